/**
 * The candidate engines of the state-store bake-off (./store-bakeoff.ts) behind one small
 * adapter: batched writes (one engine transaction per batch, as the overlay folds a commit),
 * point reads, close. lmdb and node:sqlite are synchronous; the LevelDB / RocksDB bindings
 * write through async batches (their read path has sync variants). Packages that are not
 * inflow dependencies are loaded from the folders in BAKEOFF_MODULES (colon-separated
 * node_modules parents), so the bake-off can be rerun without adding them to package.json.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Lmdb from 'lmdb';

export interface BakeoffEngine {
  /** Writes every pair in one engine transaction (value null deletes). */
  batch(entries: readonly (readonly [Buffer, Buffer | null])[]): void | Promise<void>;
  get(key: Buffer): Buffer | undefined | Promise<Buffer | undefined>;
  /** Entries with keys in [from, to), counted (a consistency check after a crash). */
  count(): number | Promise<number>;
  close(): void | Promise<void>;
}

export interface EngineSpec {
  readonly name: string;
  /** npm package it comes from ('' for node: built-ins). */
  readonly pkg: string;
  readonly syncApi: string;
  open(dir: string): Promise<BakeoffEngine>;
}

/** Loads `pkg` from inflow's node_modules or a BAKEOFF_MODULES folder; undefined when not installed. */
function load(pkg: string): unknown {
  const places = [
    import.meta.url,
    ...(process.env.BAKEOFF_MODULES ?? '')
      .split(':')
      .filter(Boolean)
      .map((d) => join(d, 'x.js')),
  ];
  for (const place of places) {
    try {
      return createRequire(place)(pkg);
    } catch {
      // try the next place
    }
  }
  return undefined;
}

export const engines: readonly EngineSpec[] = [
  lmdbEngine('lmdb (fsync per commit)', false),
  lmdbEngine('lmdb (noSync)', true),
  sqliteEngine('node:sqlite (WAL, synchronous=NORMAL)', 'NORMAL'),
  sqliteEngine('node:sqlite (WAL, synchronous=OFF)', 'OFF'),
  levelLike('classic-level (LevelDB)', 'classic-level', 'ClassicLevel'),
  levelLike('@nxtedition/rocksdb (RocksDB)', '@nxtedition/rocksdb', 'RocksLevel'),
];

/**
 * lmdb: a B+ tree in a memory map; copy-on-write, so a process crash cannot tear it. noSync
 * skips the fsync at commit: a process crash still loses nothing committed (the pages are in
 * the OS cache), a machine crash may lose recent commits — what a store restored from its
 * changelog can afford.
 */
function lmdbEngine(name: string, noSync: boolean): EngineSpec {
  return {
    name,
    pkg: 'lmdb',
    syncApi: 'yes (get, transactionSync, getRange)',
    async open(dir) {
      const lmdb = load('lmdb') as typeof Lmdb | undefined;
      if (!lmdb) throw new Error('lmdb is not installed');
      mkdirSync(dir, { recursive: true });
      const db = lmdb.open({ path: dir, keyEncoding: 'binary', encoding: 'binary', mapSize: 4 * 1024 ** 3, noSync });
      return {
        batch(entries) {
          db.transactionSync(() => {
            for (const [k, v] of entries) {
              if (v === null) db.removeSync(k);
              else db.putSync(k, v);
            }
          });
        },
        get: (key) => db.getBinary(key),
        count: () => db.getKeysCount(),
        close: () => db.close(),
      };
    },
  };
}

function sqliteEngine(name: string, synchronous: 'NORMAL' | 'OFF'): EngineSpec {
  return {
    name,
    pkg: '',
    syncApi: 'yes (DatabaseSync)',
    async open(dir) {
      const { DatabaseSync } = await import('node:sqlite');
      mkdirSync(dir, { recursive: true });
      const db = new DatabaseSync(join(dir, 'store.db'));
      // WAL + synchronous=NORMAL: a commit is atomic and survives a process crash (not a power loss).
      db.exec(
        `PRAGMA journal_mode=WAL; PRAGMA synchronous=${synchronous}; CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`,
      );
      const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
      const del = db.prepare('DELETE FROM kv WHERE k = ?');
      const get = db.prepare('SELECT v FROM kv WHERE k = ?');
      const count = db.prepare('SELECT count(*) AS n FROM kv');
      return {
        batch(entries) {
          db.exec('BEGIN');
          for (const [k, v] of entries) {
            if (v === null) del.run(k);
            else put.run(k, v);
          }
          db.exec('COMMIT');
        },
        get(key) {
          const row = get.get(key) as { v: Uint8Array } | undefined;
          return row ? Buffer.from(row.v.buffer, row.v.byteOffset, row.v.byteLength) : undefined;
        },
        count: () => (count.get() as { n: number }).n,
        close: () => db.close(),
      };
    },
  };
}

interface LevelDb {
  open(): Promise<void>;
  batch(ops: { type: 'put' | 'del'; key: Buffer; value?: Buffer }[]): Promise<void>;
  get(key: Buffer): Promise<Buffer | undefined>;
  keys(): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

function levelLike(name: string, pkg: string, exportName: string): EngineSpec {
  return {
    name,
    pkg,
    syncApi: 'writes async only (batch); reads async',
    async open(dir) {
      const mod = load(pkg) as Record<string, new (dir: string, o: object) => LevelDb> | undefined;
      const Ctor = mod?.[exportName] ?? (mod as unknown as new (dir: string, o: object) => LevelDb);
      if (!mod || typeof Ctor !== 'function') throw new Error(`${pkg} is not installed`);
      mkdirSync(dir, { recursive: true });
      const db = new Ctor(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      return {
        batch: (entries) =>
          db.batch(entries.map(([key, value]) => (value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value }))),
        async get(key) {
          try {
            return (await db.get(key)) ?? undefined;
          } catch (error) {
            // abstract-level 1 (the RocksDB binding) rejects a missing key; 2+ resolves undefined.
            if ((error as { code?: string }).code === 'LEVEL_NOT_FOUND') return undefined;
            throw error;
          }
        },
        async count() {
          let n = 0;
          for await (const key of db.keys()) if (key) n++;
          return n;
        },
        close: () => db.close(),
      };
    },
  };
}
