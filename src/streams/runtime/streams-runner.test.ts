import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference } from '../../serving/local-inference.ts';
import type { Inferencer } from '../../serving/types.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createStreamsRunner } from './streams-runner.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';
import { createTopologyTestDriver } from '../testing/topology-test-driver.ts';

const json = jsonSerde<Record<string, unknown>>();
const serdes = { key: stringSerde, value: json };

/** Answers overlapping calls in reverse order, so later batches finish first. */
function reordering(inner: Inferencer): Inferencer {
  const waiting: (() => void)[] = [];
  return {
    ...inner,
    async infer(request, options) {
      const response = await inner.infer(request, options);
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length >= 2) for (const r of waiting.splice(0).reverse()) r();
        else setImmediate(() => waiting.includes(resolve) && waiting.splice(waiting.indexOf(resolve), 1) && resolve());
      });
      return response;
    },
  };
}

/** Holds each call until a second one overlaps it, then answers the later call a macrotask before the earlier one. */
function lastFirst(inner: Inferencer): Inferencer {
  let held: (() => void) | undefined;
  return {
    ...inner,
    async infer(request, options) {
      const response = await inner.infer(request, options);
      await new Promise<void>((resolve) => {
        if (!held) {
          held = resolve;
          // Alone: answered once nothing else is pending, so the pipeline never stalls.
          setTimeout(() => held === resolve && ((held = undefined), resolve()), 20);
          return;
        }
        const earlier = held;
        held = undefined;
        resolve();
        setImmediate(earlier);
      });
      return response;
    },
  };
}

describe('streams runner (on the in-process log)', () => {
  it('keeps per-key order when batches finish out of order across 4 partitions', async () => {
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .predict({
        inferencer: reordering(createTestInferencer()),
        model: 'double',
        inputs: { x: { field: 'x' } },
        outputs: { y: { tensor: 'y' } },
        maxBatch: 7,
      })
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build(), { partitions: 4 });
    try {
      for (let i = 0; i < 300; i++) await driver.pipe('in', `k${i % 11}`, { i, x: [i] }, { serdes });
      await driver.flush();
      const out = await driver.read('out', serdes);
      assert.equal(out.length, 300);
      const last = new Map<string, number>();
      for (const r of out) {
        const i = r.value?.i as number;
        assert.equal(r.value?.y, 2 * i);
        assert.ok((last.get(r.key as string) ?? -1) < i, `key ${String(r.key)}: ${i} came after ${last.get(r.key as string)}`);
        last.set(r.key as string, i);
      }
    } finally {
      await driver.close();
    }
  });

  it('runs every node after a predict in offset order per partition, however the batches complete', async () => {
    const seen = new Map<number, number[]>();
    const first = createTestInferencer();
    let open!: () => void;
    // Held until every record is in: calls overlap, and the reordering model answers them last first.
    first.gate = new Promise((resolve) => {
      open = resolve;
    });
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .predict({
        inferencer: lastFirst(first),
        model: 'double',
        inputs: { x: { field: 'x' } },
        outputs: { y: { tensor: 'y' } },
        maxBatch: 7,
      })
      .peek((r) => {
        const p = r.origin.partition;
        seen.set(p, [...(seen.get(p) ?? []), (r.value as { i: number }).i]);
      })
      .flatMap<string | null, Record<string, unknown>>((r) => [
        { key: r.key, value: { ...(r.value as Record<string, unknown>), part: 0 } },
        { key: r.key, value: { ...(r.value as Record<string, unknown>), x: [(r.value as { y: number }).y], part: 1 } },
      ])
      .predict({
        inferencer: lastFirst(createTestInferencer()),
        model: 'double',
        inputs: { x: { field: 'x' } },
        outputs: { y: { tensor: 'y' } },
        maxBatch: 5,
      })
      .peek((r) => {
        const p = 10 + r.origin.partition;
        seen.set(p, [...(seen.get(p) ?? []), (r.value as { i: number }).i * 2 + (r.value as { part: number }).part]);
      })
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build(), { partitions: 1 });
    try {
      for (let i = 0; i < 60; i++) await driver.pipe('in', `k${i % 7}`, { i, x: [i] }, { serdes });
      first.gate = undefined;
      open();
      await driver.flush();
      assert.equal((await driver.read('out', serdes)).length, 120);
      assert.equal(seen.get(0)?.length, 60);
      for (const [p, order] of seen)
        assert.deepEqual(
          order,
          [...order].sort((x, y) => x - y),
          `partition ${p % 10}, after predict ${p < 10 ? 1 : 2}`,
        );
      assert.equal(seen.get(10)?.length, 120);
    } finally {
      await driver.close();
    }
  });

  it('runs map, flatMap, split and fan-out with each input’s outputs kept together in order', async () => {
    const b = createStreamsBuilder();
    const s = b.stream('in', serdes).flatMap<string | null, Record<string, unknown>>((r) => [
      { key: r.key, value: { ...r.value, part: 'a' } },
      { key: r.key, value: { ...r.value, part: 'b' } },
    ]);
    const { even, odd } = s.split({ even: (r) => (r.value.n as number) % 2 === 0 }, { defaultBranch: 'odd' });
    even?.map((r) => ({ key: `even-${r.key}`, value: r.value })).to('out', serdes);
    odd?.mapValues((r) => ({ ...r.value, odd: true })).to('out', serdes);
    s.peek(() => undefined).to('copy', serdes);
    const driver = await createTopologyTestDriver(b.build());
    try {
      for (let n = 0; n < 3; n++) await driver.pipe('in', `k${n}`, { n }, { serdes });
      await driver.flush();
      const out = await driver.read('out', serdes);
      assert.deepEqual(
        out.map((r) => `${r.key}/${String(r.value?.part)}`),
        ['even-k0/a', 'even-k0/b', 'k1/a', 'k1/b', 'even-k2/a', 'even-k2/b'],
      );
      assert.equal(out[2]?.value?.odd, true);
      assert.equal((await driver.read('copy', serdes)).length, 6);
    } finally {
      await driver.close();
    }
  });

  it('in exactly-once mode writes outputs and offsets in one transaction, visible only once committed', async () => {
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .mapValues((r) => ({ ...r.value, seen: true }))
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build(), { guarantee: 'exactly-once' });
    try {
      for (let i = 0; i < 10; i++) await driver.pipe('in', `k${i}`, { i }, { serdes });
      await driver.flush();
      const out = await driver.read('out', serdes);
      assert.deepEqual(
        out.map((r) => r.value?.i),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
      assert.ok(driver.runner.stats().inFlight === 0);
      const commits = await driver.runner.metrics.commits.get();
      assert.ok((commits.values[0]?.value ?? 0) >= 1);
    } finally {
      await driver.close();
    }
  });

  it('skips failed records under the skip policy and stops without committing them under the fail policy', async () => {
    const build = () => {
      const b = createStreamsBuilder();
      b.stream('in', serdes)
        .predict({ inferencer: createTestInferencer(), model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } } })
        .to('out', serdes);
      return b.build();
    };
    const skip = await createTopologyTestDriver(build(), { onError: 'skip' });
    try {
      await skip.pipe('in', 'a', { x: [1] }, { serdes });
      await skip.pipe('in', 'b', { x: 'oops' }, { serdes });
      await skip.pipe('in', 'c', { x: [2] }, { serdes });
      await skip.flush();
      assert.deepEqual(
        (await skip.read('out', serdes)).map((r) => r.key),
        ['a', 'c'],
      );
      assert.deepEqual(await skip.deadLetters(), []);
      const skipped = await skip.runner.metrics.skipped.get();
      assert.equal(skipped.values[0]?.labels.code, 'INVALID_ARGUMENT');
    } finally {
      await skip.close();
    }
    const fail = await createTopologyTestDriver(build(), { onError: 'fail' });
    await fail.pipe('in', 'a', { x: [1] }, { serdes });
    await fail.pipe('in', 'b', { nox: 1 }, { serdes });
    await fail.pipe('in', 'c', { x: [2] }, { serdes });
    await fail.flush();
    await assert.rejects(fail.runner.done, {
      code: 'INVALID_ARGUMENT',
      message: /record in\/0@1: predict failed at node "PREDICT-\d+": input "x": field "x" is missing/,
    });
    assert.equal(fail.runner.stats().state, 'failed');
    await fail.close();
  });

  it('pauses partitions at the in-flight budget and resumes them when the model catches up', async () => {
    const inferencer = createTestInferencer();
    let open!: () => void;
    inferencer.gate = new Promise<void>((r) => {
      open = r;
    });
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .predict({ inferencer, model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } }, maxBatch: 8 })
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build(), { partitions: 2, maxInFlight: 16 });
    try {
      for (let i = 0; i < 100; i++) await driver.pipe('in', `k${i}`, { i, x: [i] }, { serdes });
      const deadline = Date.now() + 5000;
      while (driver.runner.stats().paused === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      const stats = driver.runner.stats();
      assert.equal(stats.paused, 2);
      assert.ok(stats.inFlight <= 16, `in flight ${stats.inFlight} > budget 16`);
      inferencer.gate = undefined;
      open();
      await driver.flush();
      assert.equal((await driver.read('out', serdes)).length, 100);
      assert.equal(driver.runner.stats().paused, 0);
    } finally {
      await driver.close();
    }
  });

  it('scores the digits reference rows with the embedded onnx model like Python onnxruntime', async () => {
    const models = join(import.meta.dirname, '..', '..', '..', 'models');
    const sample = JSON.parse(await readFile(join(models, 'samples', 'digits-mlp.json'), 'utf8')) as {
      inputs: { input: { data: number[] } };
      outputs: { label: { data: number[] }; probabilities: { data: number[] } };
    };
    const inference = await createLocalInference({
      modelRepository: join(models, 'repository'),
      load: loadServable,
      watch: false,
      settleMs: 0,
    });
    const b = createStreamsBuilder();
    b.stream('digits', serdes)
      .predict({
        inferencer: inference,
        model: 'digits-mlp',
        inputs: { input: { field: 'pixels', shape: [64] } },
        outputs: { label: { tensor: 'label' }, probabilities: { tensor: 'probabilities' } },
      })
      .to('scored', serdes);
    const driver = await createTopologyTestDriver(b.build(), { partitions: 2 });
    try {
      for (let r = 0; r < 8; r++)
        await driver.pipe('digits', `row${r}`, { r, pixels: sample.inputs.input.data.slice(r * 64, r * 64 + 64) }, { serdes });
      await driver.flush();
      const out = await driver.read('scored', serdes);
      assert.equal(out.length, 8);
      for (const rec of out) {
        const r = rec.value?.r as number;
        assert.equal(rec.value?.label, sample.outputs.label.data[r]);
        const p = rec.value?.probabilities as number[];
        p.forEach((v, j) => assert.ok(Math.abs(v - (sample.outputs.probabilities.data[r * 10 + j] as number)) < 1e-5));
        assert.equal(rec.headers['inflow-model'], 'digits-mlp');
      }
    } finally {
      await driver.close();
      await inference.close();
    }
  });
});

describe('streams runner when producing fails', () => {
  for (const guarantee of ['at-least-once', 'exactly-once'] as const) {
    it(`re-consumes the records of a failed send, produces nothing past them before that, and frees their budget (${guarantee})`, async () => {
      const memory = createMemoryClient();
      let failures = 1;
      let sendStarted!: () => void;
      const started = new Promise<void>((r) => {
        sendStarted = r;
      });
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      /** The memory client; the pipeline's first send hangs until released, then fails like an unreachable broker. */
      const client: KafkaClient = {
        ...memory,
        producer(options) {
          const inner = memory.producer(options);
          const maybeFail = async (): Promise<void> => {
            if (failures-- <= 0) return;
            sendStarted();
            await released;
            throw new InflowError('KAFKA_UNREACHABLE', 'broker went away (injected)');
          };
          return {
            async send(records) {
              await maybeFail();
              return inner.send(records);
            },
            async beginTransaction() {
              const txn = await inner.beginTransaction();
              return {
                send: async (records) => {
                  await maybeFail();
                  return txn.send(records);
                },
                sendOffsets: (consumer, offsets) => txn.sendOffsets(consumer, offsets),
                commit: () => txn.commit(),
                abort: () => txn.abort(),
              };
            },
            close: () => inner.close(),
          };
        },
      };
      const admin = memory.admin();
      await admin.createTopics([
        { topic: 'in', partitions: 2 },
        { topic: 'out', partitions: 2 },
        { topic: 'app-dlq', partitions: 1 },
      ]);
      await admin.close();
      const input = memory.producer();
      const wave = (from: number) =>
        input.send(
          Array.from({ length: 20 }, (_, i) => ({
            topic: 'in',
            key: Buffer.from(`k${from + i}`),
            value: Buffer.from(json.serialize({ x: [from + i] }) as Buffer),
          })),
        );
      const b = createStreamsBuilder();
      b.stream('in', serdes)
        .predict({ inferencer: createTestInferencer(), model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } } })
        .to('out', serdes);
      const runner = createStreamsRunner(b.build(), { client, applicationId: 'app', guarantee, commitIntervalMs: 10, lagIntervalMs: 0 });
      await runner.start();
      // The first wave's send hangs; the second wave is processed meanwhile, so a produce and a
      // commit are due behind the failing send.
      await wave(0);
      await started;
      await wave(20);
      const deadline = Date.now() + 10_000;
      while ((runner.stats().inFlight < 40 || runner.stats().predictPending > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      release();
      const reader = memory.consumer({ groupId: 'reader', autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe(['out']);
      const seen = new Set<string>();
      while (seen.size < 40 && Date.now() < deadline) for (const r of await reader.poll({ timeoutMs: 100 })) seen.add(String(r.key));
      await runner.commitNow();
      const stats = runner.stats();
      const rewinds = (await runner.metrics.rewinds.get()).values.reduce((a, v) => a + v.value, 0);
      await Promise.all([runner.close(), reader.close()]);
      await memory.close();
      assert.ok(failures < 0, 'the injected failure happened');
      assert.equal(seen.size, 40, 'every input has an output');
      assert.equal(rewinds, 1);
      assert.equal(stats.inFlight, 0, 'nothing is counted in flight once everything is produced');
    });
  }
});
