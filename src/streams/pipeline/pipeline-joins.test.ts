import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createTopologyTestDriver } from '../testing/topology-test-driver.ts';
import { parsePipelineConfig } from './pipeline-config.ts';
import { compileRowSchema } from './pipeline-joins.ts';
import { buildTopology } from './pipeline-topology.ts';

const json = jsonSerde<Record<string, unknown>>();
const serdes = { key: stringSerde, value: json };

const YAML = (type: 'inner' | 'left') => `
applicationId: enrich
tables:
  customers:
    topic: customers
    fields: { segment: string, age: integer }
pipeline:
  - source: { topic: events, key: string }
  - join: { name: with-customer, table: customers, key: customer_id, as: customer, type: ${type}, fields: [segment] }
  - to: { topic: enriched }
`;

async function run(type: 'inner' | 'left') {
  const topology = buildTopology(parsePipelineConfig(YAML(type), 'p.yaml'), new Map(), 'p.yaml');
  const d = await createTopologyTestDriver(topology, { partitions: 2 });
  try {
    await d.pipe('customers', '1', { segment: 'gold', age: 40 }, { serdes });
    await d.pipe('customers', '2', { segment: 'silver', age: 30.5 }, { serdes });
    await d.flush();
    await d.pipe('events', 'e1', { id: 'e1', customer_id: 1, amount: 3 }, { serdes });
    await d.pipe('events', 'e2', { id: 'e2', customer_id: 2, amount: 4 }, { serdes });
    await d.flush();
    const out = (await d.read('enriched', serdes)).map((r) => r.value);
    return { out, dead: await d.deadLetters(), describe: topology.describe() };
  } finally {
    await d.close();
  }
}

describe('pipeline tables and joins', () => {
  it('joins each record with the row its field names, putting the chosen row fields at `as` (inner)', async () => {
    const { out, dead, describe: text } = await run('inner');
    assert.deepEqual(out, [{ id: 'e1', customer_id: 1, amount: 3, customer: { segment: 'gold' } }]);
    // Row 2 breaks the schema (age 30.5 is no integer): a dead letter; e2 then has no row and the inner join drops it.
    assert.equal(dead.length, 1);
    assert.equal(
      dead[0]?.headers[DeadLetterHeader.MESSAGE],
      'table "customers": field "age" is number 30.5; expected an integer (tables.customers.fields)',
    );
    assert.equal(dead[0]?.headers[DeadLetterHeader.TOPIC], 'customers');
    assert.match(text, /lookup +with-customer \(inner join, global table: customers\)/);
  });

  it('a left join passes a record without a row on unchanged', async () => {
    const { out } = await run('left');
    assert.deepEqual(out, [
      { id: 'e1', customer_id: 1, amount: 3, customer: { segment: 'gold' } },
      { id: 'e2', customer_id: 2, amount: 4 },
    ]);
  });

  it('rejects a join on an unknown table, a table on an input topic, and a join on non-JSON values', () => {
    const base = YAML('inner');
    assert.throws(() => parsePipelineConfig(base.replace('table: customers,', 'table: people,'), 'p.yaml'), {
      code: 'INVALID_CONFIG',
      message: /pipeline\.1\.join\.table: unknown table "people"; expected one of tables: customers/,
    });
    assert.throws(() => parsePipelineConfig(base.replace('topic: customers', 'topic: events'), 'p.yaml'), {
      message: /tables\.customers\.topic: "events" is an input topic of this pipeline/,
    });
    assert.throws(() => parsePipelineConfig(base.replace('key: string }', 'key: string, value: string }'), 'p.yaml'), {
      message: /pipeline\.1\.join: join adds a field to JSON values; the values here are string/,
    });
    assert.throws(() => parsePipelineConfig(base.replace('type: inner', 'type: outer'), 'p.yaml'), { message: /pipeline\.1\.join\.type/ });
  });

  it('joins a stream with the labels that arrive later, within the window (stream join)', async () => {
    const yaml = `
applicationId: scored
pipeline:
  - source: { topic: predictions, key: string }
  - join: { stream: { topic: labels, key: string }, windowMs: 60000, as: truth, fields: [label] }
  - to: { topic: scored }
`;
    const topology = buildTopology(parsePipelineConfig(yaml, 'p.yaml'), new Map(), 'p.yaml');
    const d = await createTopologyTestDriver(topology, { partitions: 2 });
    try {
      const t0 = 1_700_000_000_000;
      await d.pipe('predictions', 'tx1', { predicted: 1 }, { serdes, timestamp: t0 });
      await d.pipe('predictions', 'tx2', { predicted: 0 }, { serdes, timestamp: t0 });
      await d.pipe('labels', 'tx1', { label: 1, source: 'chargeback' }, { serdes, timestamp: t0 + 30_000 });
      await d.pipe('labels', 'tx2', { label: 1 }, { serdes, timestamp: t0 + 61_000 });
      await d.flush();
      assert.deepEqual(
        (await d.read('scored', serdes)).map((r) => [r.key, r.value]),
        [['tx1', { predicted: 1, truth: { label: 1 } }]],
      );
    } finally {
      await d.close();
    }
    assert.throws(() => parsePipelineConfig(yaml.replace('windowMs: 60000, ', ''), 'p.yaml'), {
      message: /pipeline\.1\.join\.windowMs: a stream join needs windowMs \(ms\)/,
    });
    assert.throws(() => parsePipelineConfig(yaml.replace('topic: labels', 'topic: predictions'), 'p.yaml'), {
      message: /pipeline\.1\.join\.stream\.topic: "predictions" is already read by this pipeline/,
    });
    assert.throws(
      () => parsePipelineConfig(yaml.replace('stream: { topic: labels, key: string }', 'table: x, stream: { topic: labels }'), 'p.yaml'),
      {
        message: /join a table \(table: name\) or a stream \(stream: \{ topic \}\), exactly one/,
      },
    );
  });

  it('a left or outer stream join passes records without a partner on once their window has closed', async () => {
    const yaml = (type: string) => `
applicationId: scored
pipeline:
  - source: { topic: predictions, key: string }
  - join: { stream: { topic: labels, key: string }, type: ${type}, windowMs: 60000, as: truth, fields: [label] }
  - to: { topic: scored }
`;
    for (const type of ['left', 'outer']) {
      const topology = buildTopology(parsePipelineConfig(yaml(type), 'p.yaml'), new Map(), 'p.yaml');
      const d = await createTopologyTestDriver(topology, { partitions: 1 });
      try {
        const t0 = 1_700_000_000_000;
        await d.pipe('predictions', 'tx1', { predicted: 1 }, { serdes, timestamp: t0 });
        await d.pipe('labels', 'tx9', { label: 0 }, { serdes, timestamp: t0 });
        await d.pipe('predictions', 'tx2', { predicted: 0 }, { serdes, timestamp: t0 + 1_000 });
        await d.pipe('labels', 'tx1', { label: 1 }, { serdes, timestamp: t0 + 30_000 });
        await d.flush();
        assert.deepEqual(
          (await d.read('scored', serdes)).map((r) => [r.key, r.value]),
          [['tx1', { predicted: 1, truth: { label: 1 } }]],
          `${type}: tx2 and tx9 wait for their windows to close`,
        );
        // Both stream times past 1 s + 2 × 60 s: every window closed.
        await d.pipe('labels', 'late', { label: 1 }, { serdes, timestamp: t0 + 200_000 });
        await d.pipe('predictions', 'late', { predicted: 1 }, { serdes, timestamp: t0 + 200_000 });
        await d.flush();
        assert.deepEqual(
          (await d.read('scored', serdes)).slice(1).map((r) => [r.key, r.value]),
          [
            ['tx2', { predicted: 0 }],
            ...(type === 'outer' ? [['tx9', { truth: { label: 0 } }]] : []),
            ['late', { predicted: 1, truth: { label: 1 } }],
          ],
        );
      } finally {
        await d.close();
      }
    }
  });

  it('joins a co-partitioned table by the record key, its rows held per task, and refuses a lookup key for it', async () => {
    const yaml = `
applicationId: enrich
tables:
  customers: { topic: customers, copartitioned: true, fields: { segment: string } }
pipeline:
  - source: { topic: events, key: string }
  - join: { table: customers, as: customer, type: left }
  - to: { topic: enriched }
`;
    const topology = buildTopology(parsePipelineConfig(yaml, 'p.yaml'), new Map(), 'p.yaml');
    assert.match(topology.describe(), /tasks 0_<partition> over \[events, customers\]/);
    const d = await createTopologyTestDriver(topology, { partitions: 2 });
    try {
      await d.pipe('customers', 'c1', { segment: 'gold' }, { serdes });
      await d.pipe('customers', 'c2', { segment: 3 }, { serdes });
      await d.flush();
      await d.pipe('events', 'c1', { n: 1 }, { serdes });
      await d.pipe('events', 'c2', { n: 2 }, { serdes });
      await d.flush();
      const out = (await d.read('enriched', serdes)).map((r): [string, unknown] => [r.key ?? '', r.value]);
      assert.deepEqual(
        out.sort((a, b) => a[0].localeCompare(b[0])),
        [
          ['c1', { n: 1, customer: { segment: 'gold' } }],
          ['c2', { n: 2 }],
        ],
      );
      const dead = await d.deadLetters();
      assert.equal(
        dead[0]?.headers[DeadLetterHeader.MESSAGE],
        'table "customers": field "segment" is number 3; expected a string (tables.customers.fields)',
      );
    } finally {
      await d.close();
    }
    assert.throws(() => parsePipelineConfig(yaml.replace('as: customer,', 'key: customer_id, as: customer,'), 'p.yaml'), {
      message: /pipeline\.1\.join\.key: table "customers" is co-partitioned: a record meets the row of its own key/,
    });
  });

  it('checks rows against the table schema with the field and what was expected', () => {
    const check = compileRowSchema('t', { 'a.b': 'number', c: 'boolean' });
    check({ a: { b: 1 }, c: false });
    assert.throws(() => check({ a: {}, c: true }), {
      code: 'INVALID_ARGUMENT',
      message: 'table "t": field "a.b" is missing; expected a number (tables.t.fields)',
    });
    assert.throws(() => check([1]), { message: 'table "t": the row is an array; expected a JSON object' });
  });
});
