/**
 * A broker outage under a running pipeline (issue 15 item 1), on a broker of the test's own:
 * stopped for ~10 s mid-stream with its data kept, then started again. The pipeline must ride
 * it out — no exit, `disconnected` reported meanwhile, one log line per state change — and a
 * read_committed reader must find every output (exactly-once: each exactly once). The 60 s and
 * 5 min outages run in bench/outage/outage.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitCodeFor } from '../../src/cli/main.ts';
import type { InflowError } from '../../src/errors.ts';
import { type LocalBroker, startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { createStreamsRunner, type Guarantee, type StreamsRunner } from '../../src/streams/index.ts';
import {
  completeness,
  createTopics,
  digitsReference,
  digitsTopology,
  embeddedInferencer,
  produceDigits,
  readToEnd,
  waitFor,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { runOutage } from './fixtures/outage-scenario.ts';

// A broker of our own needs Java, which the global setup's broker proves (or skips without).
const javaAvailable = brokerOrSkip() !== undefined;

describe('a pipeline whose broker goes away for 10 s', { skip: javaAvailable ? false : 'no Java for a broker of our own' }, () => {
  for (const guarantee of ['exactly-once', 'at-least-once'] as const satisfies readonly Guarantee[]) {
    it(`keeps running and resumes without loss${guarantee === 'exactly-once' ? ' or duplicates' : ''} when the broker returns (${guarantee})`, async (t) => {
      const result = await runOutage({ guarantee, outageMs: 10_000, count: 6000, progress: (line) => t.diagnostic(line) });
      assert.equal(result.failure, undefined, `the pipeline stopped during the outage; its warnings:\n${result.warnings.join('\n')}`);
      assert.ok(result.sawDisconnected, 'the runner reports the broker disconnected during the outage');
      assert.equal(result.missing, 0, `${result.missing} inputs have no output`);
      if (guarantee === 'exactly-once') assert.equal(result.duplicated, 0, 'read_committed sees each output once');
      // One line when the broker goes, one when it is back (a flap while it boots may add a pair),
      // never one per retry (a 10 s outage is ~10 retries).
      assert.match(result.stateLines[0] ?? '', /unreachable; retrying with backoff/);
      assert.ok(
        result.stateLines.some((l) => /reachable again after/.test(l)),
        result.stateLines.join('\n'),
      );
      assert.ok(result.stateLines.length <= 4, `state lines:\n${result.stateLines.join('\n')}`);
    });
  }

  // The broker's graceful stop takes seconds: a fast pipeline may commit all it has before it is
  // gone. The outputs of the inputs produced after the outage must still come (the scenario once
  // waited for new outputs before producing new inputs, and timed out after 120 s).
  it('resumes with the next inputs when the broker went away after every earlier input was committed (exactly-once)', async (t) => {
    const result = await runOutage({
      guarantee: 'exactly-once',
      outageMs: 10_000,
      count: 6000,
      afterFirstHalf: true,
      progress: (line) => t.diagnostic(line),
    });
    assert.equal(result.failure, undefined, `the pipeline stopped during the outage; its warnings:\n${result.warnings.join('\n')}`);
    assert.equal(result.missing, 0, `${result.missing} inputs have no output`);
    assert.equal(result.duplicated, 0, 'read_committed sees each output once');
  });
});

describe('a pipeline started while its broker is still down', { skip: javaAvailable ? false : 'no Java for a broker of our own' }, () => {
  it('waits for the broker instead of exiting, then processes every input', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'inflow-outage-boot-'));
    let broker: LocalBroker | undefined = await startLocalBroker({ dataDir, heapMb: 256 });
    const bootstrap = [broker.bootstrapServers];
    const setup = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'boot-setup' });
    const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'boot-pipeline' });
    const inferencer = await embeddedInferencer();
    const ref = await digitsReference();
    let runner: StreamsRunner | undefined;
    try {
      await createTopics(setup, ['in', 'out', 'app-dlq'], 2);
      await produceDigits(setup, 'in', ref, 300);
      await setup.close();
      await broker.stop({ keepData: true });
      broker = undefined;
      runner = createStreamsRunner(digitsTopology(inferencer, 'in', 'out'), { client, applicationId: 'app', lagIntervalMs: 0 });
      const r = runner;
      let settled: string | undefined;
      const starting = r.start().then(
        () => void (settled = 'started'),
        (e: unknown) => void (settled = `failed: ${(e as Error).message}`),
      );
      await waitFor('the client to notice the broker is down', () => (client.connection?.state === 'disconnected' ? true : undefined));
      assert.equal(settled, undefined, 'start() neither resolved nor failed while the broker was down');
      broker = await startLocalBroker({ dataDir, heapMb: 256 });
      await starting;
      assert.equal(settled, 'started');
      await waitForLagZero(client, 'app', 'in', 120_000);
      await r.close();
      const records = await readToEnd(client, 'out');
      assert.deepEqual(completeness(records, 300).missing, []);
    } finally {
      await runner?.close().catch(() => undefined);
      await inferencer.close();
      await client.close();
      await setup.close().catch(() => undefined);
      await broker?.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a pipeline that the broker refuses to log in', { skip: javaAvailable ? false : 'no Java for a broker of our own' }, () => {
  it('stops at once with a clear UNAUTHENTICATED line instead of retrying for ever', async () => {
    const broker = await startLocalBroker({ saslUsers: { alice: 'alice-secret' }, heapMb: 256 });
    const good = createKafkaClient({
      bootstrapServers: [broker.bootstrapServers],
      sasl: { mechanism: 'PLAIN', username: 'alice', password: 'alice-secret' },
    });
    const bad = createKafkaClient({
      bootstrapServers: [broker.bootstrapServers],
      sasl: { mechanism: 'PLAIN', username: 'alice', password: 'not-her-password' },
    });
    const inferencer = await embeddedInferencer();
    try {
      await createTopics(good, ['in', 'out', 'app-dlq'], 1);
      const runner = createStreamsRunner(digitsTopology(inferencer, 'in', 'out'), { client: bad, applicationId: 'app', lagIntervalMs: 0 });
      const error = await runner.start().then(
        () => assert.fail('start() must fail for a refused login'),
        (e: unknown) => e as InflowError,
      );
      assert.equal(error.code, 'UNAUTHENTICATED');
      assert.match(error.message, /SASL authentication failed/);
      assert.equal(exitCodeFor(error), 2, 'the CLI exits 2 (a configuration the user must fix), not 3 (try again later)');
      assert.equal(bad.connection?.state, 'connected', 'a refused login is not an outage');
    } finally {
      await inferencer.close();
      await bad.close();
      await good.close();
      await broker.stop();
    }
  });
});
