import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

interface Event {
  id: string;
  customer: unknown;
  amount: number;
}
interface Customer {
  segment: string;
}
const events = { key: stringSerde, value: jsonSerde<Event>() };
const customers = { key: stringSerde, value: jsonSerde<Customer>() };
const out = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };

function enrich(inner: boolean) {
  const b = createStreamsBuilder();
  const table = b.globalTable('customers', customers, {
    name: 'customer-table',
    validate(v) {
      if (typeof (v as Customer).segment !== 'string') {
        throw new InflowError('INVALID_ARGUMENT', `customer row: segment is ${JSON.stringify((v as Customer).segment)}; expected a string`);
      }
    },
  });
  const s = b.stream('events', events);
  const join = {
    key: (r: { value: Event | null }) => r.value?.customer as string,
    joiner: (v: Event | null, row: Customer | undefined) => ({ ...v, segment: row?.segment ?? null }),
  };
  (inner ? s.join(table, join, { name: 'enrich' }) : s.leftJoin(table, join, { name: 'enrich' })).to('enriched', out);
  return b.build();
}

async function run(inner: boolean, steps: (d: Awaited<ReturnType<typeof createTopologyTestDriver>>) => Promise<void>) {
  const driver = await createTopologyTestDriver(enrich(inner), { partitions: 3 });
  try {
    await steps(driver);
    await driver.flush();
    return { out: (await driver.read('enriched', out)).map((r) => r.value), dead: await driver.deadLetters() };
  } finally {
    await driver.close();
  }
}

describe('global table join', () => {
  it('describes the join and the global table', () => {
    const text = enrich(true).describe();
    assert.match(text, /lookup +enrich \(inner join, global table: customer-table\)/);
    assert.match(text, /Global table: customer-table \(topic: customers, all partitions on every instance\)/);
  });

  it('inner join: enriches each record with the row of its key as the table held it then; a record without a row is dropped', async () => {
    const { out: got } = await run(true, async (d) => {
      await d.pipe('customers', 'c1', { segment: 'gold' }, { serdes: customers });
      await d.pipe('customers', 'c2', { segment: 'silver' }, { serdes: customers });
      await d.flush();
      await d.pipe('events', 'e1', { id: 'e1', customer: 'c1', amount: 5 }, { serdes: events });
      await d.pipe('events', 'e2', { id: 'e2', customer: 'c3', amount: 6 }, { serdes: events });
      await d.flush();
      // The row changes (and c3 arrives) after e1/e2: later records see the new rows; a tombstone removes c2.
      await d.pipe('customers', 'c1', { segment: 'platinum' }, { serdes: customers });
      await d.pipe('customers', 'c3', { segment: 'bronze' }, { serdes: customers });
      await d.pipe('customers', 'c2', null, { serdes: customers });
      await d.flush();
      await d.pipe('events', 'e3', { id: 'e3', customer: 'c1', amount: 7 }, { serdes: events });
      await d.pipe('events', 'e4', { id: 'e4', customer: 'c3', amount: 8 }, { serdes: events });
      await d.pipe('events', 'e5', { id: 'e5', customer: 'c2', amount: 9 }, { serdes: events });
    });
    assert.deepEqual(got.map((v) => [v?.id, v?.segment]).sort(), [
      ['e1', 'gold'],
      ['e3', 'platinum'],
      ['e4', 'bronze'],
    ]);
  });

  it('left join: a record without a row (or without a key) is joined with undefined', async () => {
    const { out: got } = await run(false, async (d) => {
      await d.pipe('customers', 'c1', { segment: 'gold' }, { serdes: customers });
      await d.flush();
      await d.pipe('events', 'e1', { id: 'e1', customer: 'c1', amount: 5 }, { serdes: events });
      await d.pipe('events', 'e2', { id: 'e2', customer: 'nobody', amount: 6 }, { serdes: events });
      await d.pipe('events', 'e3', { id: 'e3', customer: null, amount: 7 }, { serdes: events });
    });
    assert.deepEqual(got.map((v) => [v?.id, v?.segment]).sort(), [
      ['e1', 'gold'],
      ['e2', null],
      ['e3', null],
    ]);
  });

  it('dead-letters a table record that does not decode or fails its schema (the row keeps its value), and a lookup key that does not serialize', async () => {
    const { out: got, dead } = await run(true, async (d) => {
      await d.pipe('customers', 'c1', { segment: 'gold' }, { serdes: customers });
      await d.pipeRaw('customers', Buffer.from('c1'), Buffer.from('{not json'));
      await d.pipe('customers', 'c1', { segment: 42 } as unknown as Customer, { serdes: customers });
      await d.flush();
      await d.pipe('events', 'e1', { id: 'e1', customer: 'c1', amount: 5 }, { serdes: events });
      await d.pipe('events', 'e2', { id: 'e2', customer: { nested: 1 }, amount: 5 }, { serdes: events });
    });
    assert.deepEqual(
      got.map((v) => [v?.id, v?.segment]),
      [['e1', 'gold']],
    );
    const reasons = dead.map((r) => [
      r.headers[DeadLetterHeader.TOPIC],
      r.headers[DeadLetterHeader.NODE],
      r.headers[DeadLetterHeader.MESSAGE],
    ]);
    assert.equal(dead.length, 3, JSON.stringify(reasons));
    const table = reasons.filter(([topic]) => topic === 'customers');
    assert.equal(table.length, 2);
    assert.ok(table.every(([, node]) => node === 'table:customer-table'));
    assert.match(String(table[0]?.[2]), /JSON/);
    assert.equal(table[1]?.[2], 'customer row: segment is 42; expected a string');
    const key = reasons.find(([topic]) => topic === 'events');
    assert.equal(key?.[1], 'enrich');
    assert.match(String(key?.[2]), /object/);
  });
});
