/**
 * The state-store engine bake-off behind docs/decisions/0003-state-stores.md: for each candidate
 * (./bakeoff-engines.ts), puts/s and gets/s with random and sequential 8/16-byte keys and
 * 100-byte values, the cost of one small batch commit (a commit folding a few write sets), bulk
 * load speed (a restore), on-disk size, and crash behaviour (a child writing batches is
 * SIGKILLed mid-write; on reopen every batch must be all there or not at all).
 *
 *   node bench/state/store-bakeoff.ts            # N = 100 000 records
 *   BAKEOFF_N=1000000 nice -n 10 node bench/state/store-bakeoff.ts
 *   BAKEOFF_MODULES=/tmp/x/node_modules/..       # where non-dependency candidates are installed
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BakeoffEngine, type EngineSpec, engines } from './bakeoff-engines.ts';

const N = Number(process.env.BAKEOFF_N ?? 100_000);
const VALUE = randomBytes(100);
const BATCH = 1000;

function seqKey(i: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(i));
  return b;
}

function dirSize(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirSize(p) : statSync(p).size;
  }
  return total;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function writeAll(db: BakeoffEngine, keys: readonly Buffer[], batch: number): Promise<void> {
  for (let i = 0; i < keys.length; i += batch) await db.batch(keys.slice(i, i + batch).map((k) => [k, VALUE] as const));
}

interface Row {
  engine: string;
  seqPut: number;
  randPut: number;
  seqGet: number;
  randGet: number;
  commitUs: number;
  bulkLoad: number;
  diskMiB: number;
  crash: string;
}

async function measure(spec: EngineSpec): Promise<Row> {
  const root = mkdtempSync(join(tmpdir(), 'inflow-bakeoff-'));
  try {
    const seq = Array.from({ length: N }, (_, i) => seqKey(i));
    const rand = Array.from({ length: N }, () => randomBytes(16));
    const db = await spec.open(join(root, 'a'));
    const seqPut = N / (await timed(() => writeAll(db, seq, BATCH)));
    const randPut = N / (await timed(() => writeAll(db, rand, BATCH)));
    const seqGet =
      N /
      (await timed(async () => {
        for (const k of seq) if ((await db.get(k)) === undefined) throw new Error(`${spec.name}: lost a key`);
      }));
    const shuffled = [...rand].sort(() => Math.random() - 0.5);
    const randGet =
      N /
      (await timed(async () => {
        for (const k of shuffled) if ((await db.get(k)) === undefined) throw new Error(`${spec.name}: lost a key`);
      }));
    const commits = 2000;
    const commitUs =
      ((await timed(async () => {
        for (let c = 0; c < commits; c++) await db.batch(Array.from({ length: 10 }, (_, j) => [seqKey(N + c * 10 + j), VALUE] as const));
      })) *
        1e6) /
      commits;
    await db.close();
    const diskMiB = dirSize(join(root, 'a')) / 2 ** 20;
    const fresh = await spec.open(join(root, 'b'));
    const bulkLoad = N / (await timed(() => writeAll(fresh, rand, 10_000)));
    await fresh.close();
    const crash = await crashRuns(spec, root, 3);
    return { engine: spec.name, seqPut, randPut, seqGet, randGet, commitUs, bulkLoad, diskMiB, crash };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** SIGKILLs a writing child `runs` times (same directory); checks every batch is whole after each. */
async function crashRuns(spec: EngineSpec, root: string, runs: number): Promise<string> {
  const dir = join(root, 'crash');
  const verdicts: string[] = [];
  for (let run = 0; run < runs; run++) {
    const child = spawn(process.execPath, [import.meta.filename, '--crash-child', spec.name, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Kill mid-stream: after a random number of acknowledged batches.
        if (out.split('\n').length > 20 + Math.floor(Math.random() * 40) && !child.killed) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    const acked = out.trim().split('\n').filter(Boolean).length;
    const db = await spec.open(dir);
    const last = await db.get(Buffer.from('last'));
    const n = last === undefined ? -1 : last.readUInt32BE(0);
    const count = await db.count();
    await db.close();
    // Batch b writes 100 keys; 'last' is overwritten by each batch.
    const whole = count === (n + 1) * 100 + (n >= 0 ? 1 : 0);
    const lostAcked = n + 1 < acked - 1; // the child prints after each batch resolved; the last print may race the kill
    verdicts.push(whole && !lostAcked ? 'ok' : `BROKEN (count ${count}, last ${n}, acked ${acked})`);
  }
  return verdicts.every((v) => v === 'ok') ? `${runs}/${runs} consistent` : verdicts.join('; ');
}

async function crashChild(name: string, dir: string): Promise<void> {
  const spec = engines.find((e) => e.name === name);
  if (!spec) throw new Error(`no engine ${name}`);
  const db = await spec.open(dir);
  const last = await db.get(Buffer.from('last'));
  for (let b = last === undefined ? 0 : last.readUInt32BE(0) + 1; ; b++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(b);
    const entries: [Buffer, Buffer][] = Array.from({ length: 100 }, (_, j) => [Buffer.from(`b${b}-${j}`), VALUE]);
    entries.push([Buffer.from('last'), counter]);
    await db.batch(entries);
    process.stdout.write(`${b}\n`);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--crash-child') return crashChild(process.argv[3] ?? '', process.argv[4] ?? '');
  const loadBefore = loadavg()[0]?.toFixed(1);
  console.log(`store bake-off: N = ${N.toLocaleString('en')} records, 100-byte values, batches of ${BATCH}; load average ${loadBefore}`);
  const rows: Row[] = [];
  for (const spec of engines) {
    try {
      rows.push(await measure(spec));
      console.error(`measured ${spec.name}`);
    } catch (error) {
      console.log(`${spec.name}: skipped (${(error as Error).message})`);
    }
  }
  const f = (x: number) => Math.round(x).toLocaleString('en');
  console.log(
    '\n| engine | seq put/s | random put/s | seq get/s | random get/s | commit of 10 puts (µs) | bulk load rec/s | disk MiB | SIGKILL mid-write |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(
      `| ${r.engine} | ${f(r.seqPut)} | ${f(r.randPut)} | ${f(r.seqGet)} | ${f(r.randGet)} | ${r.commitUs.toFixed(1)} | ${f(r.bulkLoad)} | ${r.diskMiB.toFixed(1)} | ${r.crash} |`,
    );
  }
  console.log(`\nload average after: ${loadavg()[0]?.toFixed(1)}`);
}

await main();
