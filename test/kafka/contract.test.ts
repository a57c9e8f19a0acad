import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { createKafkaClient, createMemoryClient } from '../../src/kafka/index.ts';
import {
  CHECKED_LIBRARY_VERSION,
  installedLibraryVersion,
  libraryInternalsProblems,
} from '../../src/kafka/platformatic/library-internals.ts';
import { kafkaContract } from './contract.ts';
import { brokerOrSkip } from '../setup/broker.ts';

kafkaContract('the in-process log', () => createMemoryClient());

const bootstrap = brokerOrSkip();
if (bootstrap)
  kafkaContract(`Apache Kafka at ${bootstrap.join(',')}`, () =>
    createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-contract' }),
  );

describe('the pinned Kafka client library', () => {
  it('still has every internal the wrapper patches or reads (else: re-check docs/decisions/0001-kafka-client.md B1–B12)', () => {
    const problems = libraryInternalsProblems();
    assert.deepEqual(problems, [], `@platformatic/kafka changed under inflow's wrapper:\n- ${problems.join('\n- ')}`);
  });

  it('is pinned to the exact version the internals were checked against', async () => {
    const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    assert.equal(
      manifest.dependencies['@platformatic/kafka'],
      CHECKED_LIBRARY_VERSION,
      'package.json must pin @platformatic/kafka exactly (no ^ or ~): the wrapper patches private internals of that version',
    );
    assert.equal(installedLibraryVersion(), CHECKED_LIBRARY_VERSION);
  });
});
