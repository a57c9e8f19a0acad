import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { Consumer } from '@platformatic/kafka';
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

  it('emits consumer:group:join once a member has its generation and assignment (the wrapper reads the generation there)', {
    skip: bootstrap ? false : 'no broker',
  }, async () => {
    const topic = `internals-join-${randomUUID().slice(0, 8)}`;
    const client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'inflow-internals' });
    await client.admin().createTopics([{ topic, partitions: 1 }]);
    const raw = new Consumer({ clientId: 'inflow-internals', bootstrapBrokers: bootstrap ?? [], groupId: `g-${topic}` });
    try {
      const joined = new Promise<{ generation: number; assigned: number }>((resolve) =>
        raw.once('consumer:group:join', () => resolve({ generation: raw.generationId, assigned: raw.assignments?.length ?? 0 })),
      );
      const stream = await raw.consume({ topics: [topic] });
      const seen = await joined;
      await stream.close();
      assert.ok(seen.generation >= 0, `generationId ${seen.generation} when consumer:group:join fired`);
      assert.equal(seen.assigned, 1, 'the assignment is set when consumer:group:join fires');
    } finally {
      await raw.close().catch(() => undefined);
      await client
        .admin()
        .deleteTopics([topic])
        .catch(() => undefined);
      await client.close();
    }
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
