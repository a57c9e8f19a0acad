/**
 * Backpressure on the real broker: the model is held (a gate the test opens, not a timer) for
 * longer than the consumer's session timeout. The runner keeps at most `maxInFlight` records
 * (plus one poll) between poll() and acknowledgement, pauses its partitions instead of
 * buffering, keeps heart-beating so the group does not rebalance, and resumes once the model
 * answers again — every record then flows through exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import type { LocalInference } from '../../src/serving/local-inference.ts';
import type { Inferencer } from '../../src/serving/types.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner } from '../../src/streams/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  assertMatchesReference,
  completeness,
  createTopics,
  type DigitsReference,
  digitsReference,
  embeddedInferencer,
  produceDigits,
  readToEnd,
  serdes,
  uniqueName,
  outputOf,
  waitFor,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const COUNT = 2000;
const MAX_IN_FLIGHT = 64;
const MAX_POLL = 16;
const SESSION_MS = 6000;
/** How long the model stays blocked: longer than the session timeout. */
const HOLD_MS = 8000;

/** An inferencer that answers only while its gate is open. */
function gated(inner: Inferencer): Inferencer & { open(): void; readonly calls: number } {
  const gate = Promise.withResolvers<undefined>();
  let calls = 0;
  return {
    async infer(request, options) {
      calls++;
      await gate.promise;
      return inner.infer(request, options);
    },
    metadata: (model, version) => inner.metadata(model, version),
    ready: (model) => inner.ready(model),
    close: async () => undefined,
    open: () => gate.resolve(undefined),
    get calls() {
      return calls;
    },
  };
}

describe('backpressure of a pipeline on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let inferencer: LocalInference;
  let ref: DigitsReference;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-backpressure' });
    inferencer = await embeddedInferencer();
    ref = await digitsReference();
  });
  after(async () => {
    await inferencer?.close();
    await client?.close();
  });

  it('bounds in-flight records, pauses partitions and keeps its assignment while the model is stuck past the session timeout', async (t) => {
    const input = uniqueName('bp-in');
    const output = uniqueName('bp-out');
    const applicationId = uniqueName('bp-app');
    await createTopics(client, [input, output, `${applicationId}-dlq`]);
    await produceDigits(client, input, ref, COUNT);

    const slow = gated(inferencer);
    const late: { runner?: StreamsRunner } = {};
    // Sampled at every admission (peek runs synchronously right after a record is counted in flight).
    let maxInFlight = 0;
    const b = createStreamsBuilder();
    b.stream(input, serdes)
      .peek(() => {
        maxInFlight = Math.max(maxInFlight, late.runner?.stats().inFlight ?? 0);
      })
      .predict({
        inferencer: slow,
        model: 'digits-mlp',
        inputs: { input: { field: 'pixels', shape: [64] } },
        outputs: { label: { tensor: 'label' }, probabilities: { tensor: 'probabilities' } },
        maxBatch: 32,
      })
      .mapValues((r) => {
        const v = r.value as Record<string, unknown>;
        return { id: v.id, label: v.label, probabilities: v.probabilities };
      })
      .to(output, serdes);
    const r = createStreamsRunner(b.build(), {
      client,
      applicationId,
      instanceId: 'only',
      guarantee: 'exactly-once',
      maxInFlight: MAX_IN_FLIGHT,
      maxPollRecords: MAX_POLL,
      sessionTimeoutMs: SESSION_MS,
      lagIntervalMs: 0,
    });
    late.runner = r;
    await r.start();
    const partitions = r.stats().assigned.length;
    assert.equal(partitions, 8);
    try {
      await waitFor('the runner to fill its in-flight budget and pause its partitions', () =>
        r.stats().inFlight >= MAX_IN_FLIGHT && r.stats().paused > 0 ? true : undefined,
      );
      const paused = (await r.metrics.pausedPartitions.get()).values[0]?.value ?? 0;
      assert.equal(paused, partitions, 'the paused-partitions gauge shows every partition paused');
      assert.ok(slow.calls >= 1, 'the model is busy (called, not answering)');

      // Hold the model past the session timeout, checking throughout that nothing grows and nothing is revoked.
      const holdUntil = Date.now() + HOLD_MS;
      let samples = 0;
      await waitFor(
        `${HOLD_MS} ms with the model stuck`,
        () => {
          const s = r.stats();
          samples++;
          assert.equal(s.assigned.length, partitions, `the runner keeps its ${partitions} partitions while the model is stuck`);
          assert.ok(s.inFlight <= MAX_IN_FLIGHT + MAX_POLL, `in flight ${s.inFlight} ≤ ${MAX_IN_FLIGHT} + one poll of ${MAX_POLL}`);
          assert.equal(s.state, 'running');
          return Date.now() >= holdUntil ? true : undefined;
        },
        { timeoutMs: HOLD_MS + 5000, everyMs: 100 },
      );
      assert.equal(r.stats().paused, partitions, 'still paused at the end of the hold');
      const rewindsWhileStuck = (await r.metrics.rewinds.get()).values.reduce((a, v) => a + v.value, 0);
      assert.equal(rewindsWhileStuck, 0, 'no revocation or rewind while the model was stuck');

      slow.open();
      await waitForLagZero(client, applicationId, input);
      await waitFor('the partitions to be resumed', () => (r.stats().paused === 0 ? true : undefined));
      assert.equal((await r.metrics.pausedPartitions.get()).values[0]?.value, 0, 'the gauge shows no paused partition');
      t.diagnostic(`max in flight seen ${maxInFlight} (budget ${MAX_IN_FLIGHT}, poll ${MAX_POLL}); ${samples} samples during the hold`);
    } finally {
      slow.open();
      await r.close();
    }
    assert.ok(maxInFlight <= MAX_IN_FLIGHT + MAX_POLL, `in flight peaked at ${maxInFlight}`);
    assert.ok(maxInFlight >= MAX_IN_FLIGHT / 2, `the budget was used (peak ${maxInFlight})`);
    assert.equal(
      (await r.metrics.rewinds.get()).values.reduce((a, v) => a + v.value, 0),
      0,
      'no rewind at all',
    );

    const records = await readToEnd(client, output, { isolation: 'read_committed' });
    assert.deepEqual(completeness(records, COUNT), { missing: [], duplicates: 0 });
    for (const rec of records) assertMatchesReference(outputOf(rec), ref);
  });
});
