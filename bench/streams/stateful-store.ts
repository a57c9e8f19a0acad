/**
 * The state path of the stateful benchmark without Kafka: the windowed count + mean of
 * `stateful-compare.ts` (per key, 10 s tumbling windows, every update emitted) run straight on a
 * store's transactional overlay over lmdb, committing (changelog records + fold) every
 * `--commit-every` records as the runner does at its commit interval. It isolates what a record
 * costs in the state layer (overlay reads and writes, store serdes, the windowed aggregation,
 * the commit's changelog records and engine write) from the consumer, the producer and the
 * broker, so a change to the state layer can be measured on a busy machine (this process's CPU
 * time, not wall time).
 *
 *   node bench/streams/stateful-store.ts [--records 200000] [--keys 1000] [--commit-every 2000] [--reps 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { windowStoreSerdes } from '../../src/streams/api/aggregate-processor.ts';
import type { ProcessorContext } from '../../src/streams/api/processor-context.ts';
import type { StreamRecord } from '../../src/streams/api/stream-record.ts';
import { windowedAggregate } from '../../src/streams/api/window-aggregate.ts';
import { createKeyValueStore } from '../../src/streams/state/key-value-store.ts';
import { createLmdbEngine } from '../../src/streams/state/lmdb-engine.ts';
import { TransactionalStore } from '../../src/streams/state/transactional-store.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    keys: { type: 'string', default: '1000' },
    'commit-every': { type: 'string', default: '2000' },
    reps: { type: 'string', default: '5' },
  },
});
const N = Number(values.records);
const KEYS = Number(values.keys);
const COMMIT_EVERY = Number(values['commit-every']);
const REPS = Number(values.reps);

type Acc = { count: number; mean: [number, number] };
const aggregation = {
  init: (): Acc => ({ count: 0, mean: [0, 0] }),
  add: (acc: Acc, v: { amount: number }): Acc => ({ count: acc.count + 1, mean: [acc.mean[0] + v.amount, acc.mean[1] + 1] }),
};
const fn = windowedAggregate<string, { amount: number }, Acc>(aggregation, {
  window: { type: 'tumbling', sizeMs: 10_000, graceMs: 0 },
  time: 'record',
  emit: 'update',
  late: 'drop',
  store: 'w',
  node: 'agg',
});

/** CPU time of this process (user + system), µs: other work on the machine does not count. */
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function once(): { usPerRecord: number; commitShare: number; changelogPerRecord: number; outputs: number } {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-bench-state-'));
  const engine = createLmdbEngine({ dir, name: 'w' });
  const store = new TransactionalStore('w', engine, { topic: 'app-w-changelog', partition: 0 });
  const t0 = 1_700_000_000_000;
  let outputs = 0;
  let changelog = 0;
  let commitUs = 0;
  const writers: string[] = [];
  const start = cpuUs();
  for (let i = 0; i < N; i++) {
    const writer = `in:0:${i}`;
    const record: StreamRecord<string, { amount: number }> = {
      key: `k${i % KEYS}`,
      value: { amount: ((i * 7919) % 1000) / 10 },
      headers: [],
      timestamp: t0 + i,
      origin: { topic: 'in', partition: 0, offset: BigInt(i) },
    };
    let typed: unknown;
    const ctx = {
      store: () => {
        typed ??= createKeyValueStore('w', store.view(writer), windowStoreSerdes);
        return typed;
      },
      timestamp: record.timestamp,
      streamTime: record.timestamp,
      topic: 'in',
      partition: 0,
      offset: BigInt(i),
      headers: [],
      taskId: '0_0',
    } as unknown as ProcessorContext;
    outputs += [...(fn(record, ctx) ?? [])].length;
    writers.push(writer);
    if ((i + 1) % COMMIT_EVERY === 0 || i === N - 1) {
      const c0 = cpuUs();
      for (const w of writers) store.released(w);
      writers.length = 0;
      const prepared = store.prepareCommit();
      changelog += prepared.changelog.length;
      store.fold(prepared);
      commitUs += cpuUs() - c0;
    }
  }
  const total = cpuUs() - start;
  void engine.close().then(() => rmSync(dir, { recursive: true, force: true }));
  return { usPerRecord: total / N, commitShare: commitUs / total, changelogPerRecord: changelog / N, outputs };
}

const runs = Array.from({ length: REPS }, once);
const us = runs.map((r) => r.usPerRecord).sort((a, b) => a - b);
const median = us[Math.floor(us.length / 2)] as number;
const last = runs.at(-1) as (typeof runs)[number];
console.log(
  `${N} records, ${KEYS} keys, commit every ${COMMIT_EVERY}: ${median.toFixed(2)} CPU µs/record median of ${REPS} (${us.map((x) => x.toFixed(2)).join(', ')}), ` +
    `commit ${(100 * last.commitShare).toFixed(0)} % of it, ${last.changelogPerRecord.toFixed(3)} changelog records/record, ${last.outputs} outputs`,
);
