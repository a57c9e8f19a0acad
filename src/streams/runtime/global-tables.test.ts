/**
 * Global tables on a state directory (issue 17 memory target): rows live in lmdb, not the heap,
 * with a checkpoint of the table topic's offsets, so a restart reads only the rows written since
 * (counted by the restored-records metric); without a state directory they load in memory from
 * the beginning. On the in-process log; the real-broker test is test/streams/global-table-restart.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { silentLogger } from '../../observability/logger.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { CHECKPOINT_FILE, readOffsetsCheckpoint, writeOffsetsCheckpoint } from '../state/checkpoint.ts';
import { createGlobalTables, type GlobalTables } from './global-tables.ts';
import { createStreamsMetrics, type StreamsMetrics } from './streams-metrics.ts';

const rowSerdes = { key: stringSerde, value: jsonSerde<{ segment: string }>() };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function topology() {
  const b = createStreamsBuilder();
  const table = b.globalTable('customers', rowSerdes, { name: 'customer-table' });
  b.stream('events', rowSerdes)
    .leftJoin(table, { key: (r) => r.key as string, joiner: (v) => v }, { name: 'enrich' })
    .to('out', rowSerdes);
  return b.build();
}

async function restored(metrics: StreamsMetrics): Promise<number> {
  return (await metrics.restoredRecords.get()).values.filter((v) => v.labels.store === 'customer-table').reduce((a, v) => a + v.value, 0);
}

describe('global tables on a state directory', () => {
  const memory = createMemoryClient();
  after(() => memory.close());
  const send = (rows: [string, string | null][]) =>
    memory.producer().send(
      rows.map(([k, segment]) => ({
        topic: 'customers',
        key: Buffer.from(k),
        value: segment === null ? null : (rowSerdes.value.serialize({ segment }) as Buffer),
      })),
    );
  const open = (stateDir: string | undefined, metrics: StreamsMetrics): GlobalTables =>
    createGlobalTables({
      topology: topology(),
      client: memory,
      log: silentLogger,
      onBadRecord: async () => undefined,
      onFatal: (e) => assert.fail(`global tables failed: ${String(e)}`),
      applicationId: 'app',
      ...(stateDir === undefined ? {} : { stateDir }),
      metrics,
      labels: { pipeline: 'app' },
    });
  const lookup = (tables: GlobalTables, key: string) => tables.store('customer-table')?.get(key);

  it('keeps the rows on disk and, after a restart, reads only the rows written since its checkpoint', async () => {
    await memory.admin().createTopics([{ topic: 'customers', partitions: 3 }]);
    const stateDir = mkdtempSync(join(tmpdir(), 'inflow-global-tables-'));
    dirs.push(stateDir);
    await send(Array.from({ length: 30 }, (_, i) => [`c${i}`, `s${i % 3}`]));

    const first = createStreamsMetrics();
    const a = open(stateDir, first);
    await a.start(new AbortController().signal);
    assert.equal(await restored(first), 30, 'a first start reads the whole topic');
    assert.deepEqual(lookup(a, 'c4'), { segment: 's1' });
    // Rows written while it runs are applied, and checkpointed at close.
    await send([['c4', 'moved']]);
    await a.catchUp();
    assert.deepEqual(lookup(a, 'c4'), { segment: 'moved' });
    await a.close();
    const dir = join(stateDir, 'app', 'global', 'customer-table');
    const checkpoint = readOffsetsCheckpoint(dir);
    assert.equal(checkpoint.kind, 'offsets');
    assert.equal(
      [...(checkpoint.kind === 'offsets' ? checkpoint.offsets.values() : [])].reduce((s, o) => s + o, 0n),
      31n,
      'the checkpoint is past every row read',
    );

    // While it was down: one new row, one update, one delete.
    await send([
      ['c100', 'new'],
      ['c5', 'updated'],
      ['c6', null],
    ]);
    const second = createStreamsMetrics();
    const b = open(stateDir, second);
    await b.start(new AbortController().signal);
    assert.equal(await restored(second), 3, 'a restart reads only the three rows written after the checkpoint');
    assert.deepEqual(lookup(b, 'c4'), { segment: 'moved' }, 'rows from before the restart come from disk');
    assert.deepEqual(lookup(b, 'c0'), { segment: 's0' });
    assert.deepEqual(lookup(b, 'c100'), { segment: 'new' });
    assert.deepEqual(lookup(b, 'c5'), { segment: 'updated' });
    assert.equal(lookup(b, 'c6'), undefined, 'a tombstone deleted the row');
    await b.close();

    // An unreadable checkpoint counts as none: the table is wiped and read from the beginning.
    writeFileSync(join(dir, CHECKPOINT_FILE), 'not json');
    const third = createStreamsMetrics();
    const c = open(stateDir, third);
    await c.start(new AbortController().signal);
    assert.equal(await restored(third), 34, 'the whole topic again');
    assert.deepEqual(lookup(c, 'c5'), { segment: 'updated' });
    assert.equal(lookup(c, 'c6'), undefined);
    await c.close();
  });

  it('without a state directory loads in memory from the beginning every time and writes nothing to disk', async () => {
    const metrics = createStreamsMetrics();
    const t = open(undefined, metrics);
    await t.start(new AbortController().signal);
    assert.equal(await restored(metrics), 34);
    assert.deepEqual(lookup(t, 'c5'), { segment: 'updated' });
    await t.close();
    const again = createStreamsMetrics();
    const u = open(undefined, again);
    await u.start(new AbortController().signal);
    assert.equal(await restored(again), 34);
    await u.close();
  });

  it('reads the whole topic again when its checkpoint is past the end of the topic (the topic was re-created)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'inflow-global-tables-'));
    dirs.push(stateDir);
    const fresh = createMemoryClient();
    await fresh.admin().createTopics([{ topic: 'customers', partitions: 1 }]);
    await fresh.producer().send([{ topic: 'customers', key: Buffer.from('c1'), value: rowSerdes.value.serialize({ segment: 'x' }) }]);
    const dir = join(stateDir, 'app', 'global', 'customer-table');
    const metrics = createStreamsMetrics();
    const t = createGlobalTables({
      topology: topology(),
      client: fresh,
      log: silentLogger,
      onBadRecord: async () => undefined,
      onFatal: (e) => assert.fail(String(e)),
      applicationId: 'app',
      stateDir,
      metrics,
      labels: { pipeline: 'app' },
    });
    // A checkpoint from an older, longer topic of the same name.
    mkdirSync(dir, { recursive: true });
    writeOffsetsCheckpoint(dir, new Map([['customers:0', 500n]]));
    await t.start(new AbortController().signal);
    assert.equal(await restored(metrics), 1);
    assert.deepEqual(t.store('customer-table')?.get('c1'), { segment: 'x' });
    await t.close();
    assert.ok(existsSync(join(dir, CHECKPOINT_FILE)));
    await fresh.close();
  });
});
