/**
 * Bad records on the real broker: poison records interleaved with good ones are dead-lettered
 * with headers that say what failed and where (original key, value and headers intact) while
 * every good record is predicted; `skip` drops and counts them; `fail` stops the pipeline
 * without committing the poison record's offset.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient, type ProducerRecord, type RecordMetadata } from '../../src/kafka/index.ts';
import type { LocalInference } from '../../src/serving/local-inference.ts';
import { createStreamsRunner, DeadLetterHeader, type Guarantee } from '../../src/streams/index.ts';
import { recordBytes } from '../../src/streams/runtime/dead-letter.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  assertMatchesReference,
  completeness,
  createTopics,
  type DigitsReference,
  digitsReference,
  digitsTopology,
  embeddedInferencer,
  keyOf,
  produceRaw,
  readToEnd,
  uniqueName,
  outputOf,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const GOOD = 200;

/** One kind of poison record and what its dead letter must say. */
interface Poison {
  readonly name: string;
  readonly value: Buffer;
  readonly code: string;
  readonly stage: string;
  readonly message: RegExp;
}

function poisons(ref: DigitsReference): Poison[] {
  const row = ref.rows[0] as readonly number[];
  return [
    {
      name: 'undecodable bytes',
      value: Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      code: 'SERIALIZATION',
      stage: 'deserialize',
      message: /not valid UTF-8/,
    },
    {
      name: '63 pixels',
      value: Buffer.from(JSON.stringify({ id: -1, pixels: row.slice(0, 63) })),
      code: 'INVALID_ARGUMENT',
      stage: 'predict',
      message: /has 63 elements; expected 64/,
    },
    {
      name: 'no pixels field',
      value: Buffer.from(JSON.stringify({ id: -2, image: row })),
      code: 'INVALID_ARGUMENT',
      stage: 'predict',
      message: /field "pixels" is missing/,
    },
    {
      name: 'a string among the pixels',
      value: Buffer.from(JSON.stringify({ id: -3, pixels: [...row.slice(0, 10), 'x', ...row.slice(11)] })),
      code: 'INVALID_ARGUMENT',
      stage: 'predict',
      message: /element 10 of field "pixels" is "x"; expected a finite number/,
    },
  ];
}

/** GOOD good records with a poison record after every 10th, cycling through the kinds. */
function mixedRecords(topic: string, ref: DigitsReference): { records: ProducerRecord[]; poison: Map<string, Poison> } {
  const kinds = poisons(ref);
  const records: ProducerRecord[] = [];
  const poison = new Map<string, Poison>();
  for (let id = 0; id < GOOD; id++) {
    records.push({
      topic,
      key: Buffer.from(keyOf(id)),
      value: Buffer.from(JSON.stringify({ id, pixels: ref.pixelsOf(id) })),
    });
    if (id % 10 === 5) {
      const kind = kinds[poison.size % kinds.length] as Poison;
      const key = `poison-${poison.size}`;
      poison.set(key, kind);
      records.push({ topic, key: Buffer.from(key), value: kind.value, headers: [['trace-id', Buffer.from(`t-${key}`)]] });
    }
  }
  return { records, poison };
}

function header(headers: readonly (readonly [string, Buffer])[], name: string): string | undefined {
  return headers.find(([k]) => k === name)?.[1].toString();
}

describe('bad records in a pipeline on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let inferencer: LocalInference;
  let ref: DigitsReference;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-dlq' });
    inferencer = await embeddedInferencer();
    ref = await digitsReference();
  });
  after(async () => {
    await inferencer?.close();
    await client?.close();
  });

  for (const guarantee of ['at-least-once', 'exactly-once'] as const satisfies readonly Guarantee[]) {
    it(`dead-letters each poison record with its reason and origin while every good record is predicted (${guarantee})`, async () => {
      const input = uniqueName('dlq-in');
      const output = uniqueName('dlq-out');
      const dlq = uniqueName('dlq-dead');
      const applicationId = uniqueName('dlq-app');
      await createTopics(client, [input, output, dlq], 4);
      const { records, poison } = mixedRecords(input, ref);
      const landed = await produceRaw(client, records);
      const where = new Map<string, RecordMetadata>();
      records.forEach((r, i) => where.set(r.key?.toString() ?? '', landed[i] as RecordMetadata));

      const runner = createStreamsRunner(digitsTopology(inferencer, input, output), {
        client,
        applicationId,
        instanceId: 'only',
        guarantee,
        deadLetterTopic: dlq,
        lagIntervalMs: 0,
      });
      await runner.start();
      try {
        await waitForLagZero(client, applicationId, input);
      } finally {
        await runner.close();
      }
      const isolation = guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted';

      const out = await readToEnd(client, output, { isolation });
      assert.deepEqual(completeness(out, GOOD), { missing: [], duplicates: 0 });
      assert.equal(out.length, GOOD);
      for (const r of out) assertMatchesReference(outputOf(r), ref);

      const dead = await readToEnd(client, dlq, { isolation });
      assert.deepEqual(
        dead.map((r) => r.key?.toString()).sort(),
        [...poison.keys()].sort(),
        'exactly the poison records are dead-lettered',
      );
      for (const d of dead) {
        const key = d.key?.toString() ?? '';
        const kind = poison.get(key) as Poison;
        const origin = where.get(key) as RecordMetadata;
        const h = (name: string) => header(d.headers, name);
        assert.deepEqual(d.value, kind.value, `${key} (${kind.name}): original value intact`);
        assert.equal(h('trace-id'), `t-${key}`, `${key}: original headers kept`);
        assert.equal(h(DeadLetterHeader.CODE), kind.code, `${key} (${kind.name}): code`);
        assert.equal(h(DeadLetterHeader.STAGE), kind.stage, `${key} (${kind.name}): stage`);
        assert.match(h(DeadLetterHeader.MESSAGE) ?? '', kind.message, `${key} (${kind.name}): message`);
        assert.equal(h(DeadLetterHeader.TOPIC), input);
        assert.equal(h(DeadLetterHeader.PARTITION), String(origin.partition), `${key}: source partition`);
        assert.equal(h(DeadLetterHeader.OFFSET), String(origin.offset), `${key}: source offset`);
        assert.equal(h(DeadLetterHeader.RETRIABLE), 'false');
        if (kind.stage === 'predict') assert.equal(h(DeadLetterHeader.MODEL), 'digits-mlp');
      }
      const counted = (await runner.metrics.deadLettered.get()).values.reduce((a, v) => a + v.value, 0);
      assert.equal(counted, poison.size, 'the dead-letter counter counts each poison record once');
    });
  }

  for (const guarantee of ['at-least-once', 'exactly-once'] as const satisfies readonly Guarantee[]) {
    it(`dead-letters a ~1 MB failing record cut to maxRecordBytes and keeps going (${guarantee})`, async () => {
      const input = uniqueName('big-in');
      const output = uniqueName('big-out');
      const dlq = uniqueName('big-dead');
      const applicationId = uniqueName('big-app');
      await createTopics(client, [input, output, dlq], 1);
      const good = (from: number, n: number): ProducerRecord[] =>
        Array.from({ length: n }, (_, i) => ({
          topic: input,
          partition: 0,
          key: Buffer.from(keyOf(from + i)),
          value: Buffer.from(JSON.stringify({ id: from + i, pixels: ref.pixelsOf(from + i) })),
        }));
      // 1 048 400 bytes: the broker takes it (max.message.bytes 1 048 588 with the batch framing), the model refuses
      // it (524 189 pixels, not 64); its dead letter with the error headers (~380 bytes) is over the broker's limit.
      const big = Buffer.from(`{"id":-1,"pixels":[${'1,'.repeat(524_189)}1]}`);
      assert.equal(big.length, 1_048_400);
      await produceRaw(client, [
        ...good(0, 30),
        { topic: input, partition: 0, key: Buffer.from('big'), value: big, headers: [['trace-id', Buffer.from('t-big')]] },
        ...good(30, 30),
      ]);

      const runner = createStreamsRunner(digitsTopology(inferencer, input, output), {
        client,
        applicationId,
        instanceId: 'only',
        guarantee,
        deadLetterTopic: dlq,
        lagIntervalMs: 0,
      });
      await runner.start();
      try {
        // A pipeline that stops on the dead letter fails this at once instead of waiting out the lag.
        await Promise.race([waitForLagZero(client, applicationId, input), runner.done.then(() => assert.fail('the pipeline stopped'))]);
        assert.equal(runner.stats().state, 'running');
      } finally {
        await runner.close();
      }
      const isolation = guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted';
      const out = await readToEnd(client, output, { isolation });
      assert.deepEqual(completeness(out, 60), { missing: [], duplicates: 0 });
      const dead = await readToEnd(client, dlq, { isolation });
      assert.equal(dead.length, 1);
      const d = dead[0] as (typeof dead)[number];
      const h = (name: string) => header(d.headers, name);
      const bytes = recordBytes(d.key, d.value, d.headers);
      assert.ok(bytes <= 1_000_000, `the dead letter is ${bytes} bytes, over the default maxRecordBytes`);
      assert.equal(h(DeadLetterHeader.TRUNCATED), '1048400', 'says the value was cut, with its original size');
      assert.deepEqual(d.value, big.subarray(0, d.value?.length ?? 0), 'the value is the original first bytes');
      assert.equal(d.key?.toString(), 'big');
      assert.equal(h('trace-id'), 't-big');
      assert.equal(h(DeadLetterHeader.CODE), 'INVALID_ARGUMENT');
      assert.equal(h(DeadLetterHeader.TOPIC), input);
      assert.equal(h(DeadLetterHeader.PARTITION), '0');
      assert.equal(h(DeadLetterHeader.OFFSET), '30', 'where the original can be fetched');
    });
  }

  it('skips poison records with onError skip, counting them by stage and code, and predicts every good one', async () => {
    const input = uniqueName('skip-in');
    const output = uniqueName('skip-out');
    const applicationId = uniqueName('skip-app');
    // No dead-letter topic: the skip policy must not need one.
    await createTopics(client, [input, output], 4);
    const { records, poison } = mixedRecords(input, ref);
    await produceRaw(client, records);

    const runner = createStreamsRunner(digitsTopology(inferencer, input, output), {
      client,
      applicationId,
      instanceId: 'only',
      onError: 'skip',
      lagIntervalMs: 0,
    });
    await runner.start();
    try {
      await waitForLagZero(client, applicationId, input);
    } finally {
      await runner.close();
    }
    const out = await readToEnd(client, output);
    assert.deepEqual(completeness(out, GOOD), { missing: [], duplicates: 0 });
    assert.equal(out.length, GOOD);

    const skipped = (await runner.metrics.skipped.get()).values;
    const byKind = new Map<string, number>();
    for (const v of skipped)
      byKind.set(`${v.labels.stage}/${v.labels.code}`, (byKind.get(`${v.labels.stage}/${v.labels.code}`) ?? 0) + v.value);
    const expected = new Map<string, number>();
    for (const kind of poison.values()) expected.set(`${kind.stage}/${kind.code}`, (expected.get(`${kind.stage}/${kind.code}`) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(byKind), Object.fromEntries(expected));
    assert.equal(
      (await runner.metrics.deadLettered.get()).values.reduce((a, v) => a + v.value, 0),
      0,
    );
  });

  for (const guarantee of ['at-least-once', 'exactly-once'] as const satisfies readonly Guarantee[]) {
    it(`stops with the poison record's code under onError fail and leaves its offset uncommitted (${guarantee})`, async () => {
      const input = uniqueName('fail-in');
      const output = uniqueName('fail-out');
      const applicationId = uniqueName('fail-app');
      // One partition, so "the poison record's offset" is one number and the order is total.
      await createTopics(client, [input, output], 1);
      const good = (from: number, n: number): ProducerRecord[] =>
        Array.from({ length: n }, (_, i) => ({
          topic: input,
          partition: 0,
          key: Buffer.from(keyOf(from + i)),
          value: Buffer.from(JSON.stringify({ id: from + i, pixels: ref.pixelsOf(from + i) })),
        }));
      await produceRaw(client, good(0, 50));

      const runner = createStreamsRunner(digitsTopology(inferencer, input, output), {
        client,
        applicationId,
        instanceId: 'only',
        guarantee,
        onError: 'fail',
        lagIntervalMs: 0,
      });
      await runner.start();
      let stopped = false;
      try {
        // The 50 good records are committed first, so the committed offset has a known value.
        await waitForLagZero(client, applicationId, input);
        const kind = poisons(ref)[guarantee === 'exactly-once' ? 0 : 1] as Poison;
        const [poisoned] = await produceRaw(client, [
          { topic: input, partition: 0, key: Buffer.from('poison'), value: kind.value },
          ...good(50, 20),
        ]);
        assert.equal(poisoned?.offset, 50n);
        await assert.rejects(runner.done, (e: Error & { code?: string }) => {
          assert.equal(e.code, kind.code);
          assert.match(e.message, new RegExp(`${input}/0@50`), 'the error names the record');
          return true;
        });
        stopped = true;
        assert.equal(runner.stats().state, 'failed');
      } finally {
        if (!stopped) await runner.close();
      }

      const admin = client.admin();
      try {
        const committed = await admin.groupOffsets(applicationId, [input]);
        assert.deepEqual(
          committed.map((c) => c.offset),
          [50n],
          'the committed offset stays at the poison record',
        );
      } finally {
        await admin.close();
      }
      const out = await readToEnd(client, output, {
        isolation: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted',
        timeoutMs: 20_000,
      });
      // Outputs leave in offset order, so nothing after the poison record was produced.
      assert.deepEqual(
        out.map((r) => outputOf(r).id),
        Array.from({ length: 50 }, (_, i) => i),
      );
    });
  }
});
