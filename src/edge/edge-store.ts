/**
 * The edge agent's durable state, one SQLite file (Node's built-in `node:sqlite`, so the single
 * executable carries no extra native addon): the **journal** of device messages received but not
 * yet turned into outputs, and the **outbox** of records waiting for Kafka.
 *
 * Why a journal: mqtt.js handles incoming QoS 1 messages one at a time and sends the PUBACK when
 * the handler returns, so waiting for inference before the PUBACK would serialise the agent. A
 * message is journaled (one small insert) and acknowledged; its outputs are appended to the
 * outbox and its journal row deleted in one transaction; on a restart the journal is replayed.
 * A crash therefore loses nothing the broker was told we have.
 *
 * The outbox is bounded (records and bytes) with a policy for a full outbox: `drop-oldest` (the
 * newest data is the most useful, each drop counted) or `stop-accepting` (new records refused,
 * counted). A full disk (SQLITE_FULL, also from `maxFileBytes`) is handled by the same policy and
 * never throws. Order: records leave in the order they were appended (an increasing `seq`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { InflowError } from '../errors.ts';

/** What a full outbox does with a new record. */
export const OverflowPolicy = { DROP_OLDEST: 'drop-oldest', STOP_ACCEPTING: 'stop-accepting' } as const;
export type OverflowPolicy = (typeof OverflowPolicy)[keyof typeof OverflowPolicy];

/** A record for Kafka. Header values are text (ids, model names). */
export interface OutboxRecord {
  readonly topic: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly (readonly [string, string])[];
}

/** A record in the outbox, with its position. */
export interface StoredRecord extends OutboxRecord {
  readonly seq: number;
}

/** A device message received and acknowledged to the broker, not yet processed. */
export interface JournalEntry {
  readonly id: number;
  readonly topic: string;
  readonly payload: Buffer;
  /** Milliseconds since the epoch. */
  readonly receivedAt: number;
}

/** One processed message: its journal row (if it had one) goes, its records come. */
export interface Completion {
  readonly journalId?: number | undefined;
  readonly records: readonly OutboxRecord[];
}

/** What {@link EdgeStore.complete} did with the records. */
export interface AppendOutcome {
  stored: number;
  /** Older records removed to make room (drop-oldest). */
  dropped: number;
  /** New records not stored (stop-accepting, a record over maxBytes, or a full disk). */
  refused: number;
  /** Why something was dropped or refused. */
  reason?: 'full' | 'too-large' | 'disk-full';
}

export interface EdgeStoreOptions {
  /** Folder of `edge.db` (created). */
  readonly dir: string;
  readonly maxRecords: number;
  /** Bound on the bytes of waiting records (topic + key + value + headers). */
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
  /** `normal`: survives crashes of the process; `full`: also power loss (fsync per transaction). */
  readonly sync?: 'normal' | 'full';
  /** Hard bound on the database file (SQLite max_page_count); a write past it fails like a full disk. Default: none. */
  readonly maxFileBytes?: number;
  readonly now?: () => number;
}

export interface EdgeStoreStats {
  /** Records waiting for Kafka, and their bytes. */
  records: number;
  bytes: number;
  /** Journal rows (messages received, outputs not yet stored). */
  journal: number;
  /** Since open: records dropped (drop-oldest), refused, and writes that met a full disk. */
  dropped: number;
  refused: number;
  diskFull: number;
}

/** The journal and the outbox. Every method is synchronous (SQLite in this thread). */
export interface EdgeStore {
  /** Journals a received message; undefined when the disk refused it (the message is then processed without a journal). */
  journal(topic: string, payload: Buffer): number | undefined;
  /** Journal rows left by an earlier run, oldest first. */
  pendingJournal(): JournalEntry[];
  /** Deletes the journal rows and appends the records, in one transaction, applying the bound. */
  complete(completions: readonly Completion[]): AppendOutcome;
  /** Up to `max` oldest records. */
  peek(max: number): StoredRecord[];
  /** Removes every record up to and including `seq` (Kafka acknowledged them). */
  acknowledge(seq: number): void;
  stats(): EdgeStoreStats;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, received INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key BLOB, value BLOB, headers TEXT NOT NULL, size INTEGER NOT NULL);
`;

/** SQLite's primary result code for "database or disk is full". */
const SQLITE_FULL = 13;

function isDiskFull(error: unknown): boolean {
  const e = error as { errcode?: number; message?: string };
  return (typeof e.errcode === 'number' && (e.errcode & 0xff) === SQLITE_FULL) || /database or disk is full/.test(String(e.message));
}

function sizeOf(r: OutboxRecord, headersJson: string): number {
  return Buffer.byteLength(r.topic) + (r.key?.length ?? 0) + (r.value?.length ?? 0) + Buffer.byteLength(headersJson);
}

const buf = (v: unknown): Buffer | null => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : null);

/** Opens (creating) the store in `options.dir`. */
export function openEdgeStore(options: EdgeStoreOptions): EdgeStore {
  const now = options.now ?? Date.now;
  const file = join(options.dir, 'edge.db');
  let db: DatabaseSync;
  try {
    mkdirSync(options.dir, { recursive: true });
    db = new DatabaseSync(file);
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'};`);
    db.exec(SCHEMA);
    if (options.maxFileBytes !== undefined) {
      const page = Number((db.prepare('PRAGMA page_size').get() as { page_size: number | bigint }).page_size);
      db.exec(`PRAGMA max_page_count = ${Math.max(8, Math.floor(options.maxFileBytes / page))}`);
    }
  } catch (error) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `cannot open the edge outbox ${file}: ${(error as Error).message}; expected a writable folder`,
      {
        cause: error,
      },
    );
  }
  const st = {
    journal: db.prepare('INSERT INTO journal (topic, payload, received) VALUES (?, ?, ?)'),
    unjournal: db.prepare('DELETE FROM journal WHERE id = ?'),
    pending: db.prepare('SELECT id, topic, payload, received FROM journal ORDER BY id'),
    insert: db.prepare('INSERT INTO outbox (topic, key, value, headers, size) VALUES (?, ?, ?, ?, ?)'),
    peek: db.prepare('SELECT seq, topic, key, value, headers FROM outbox ORDER BY seq LIMIT ?'),
    oldest: db.prepare('SELECT seq, size FROM outbox ORDER BY seq'),
    deleteThrough: db.prepare('DELETE FROM outbox WHERE seq <= ?'),
    sizeThrough: db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM outbox WHERE seq <= ?'),
  } satisfies Record<string, StatementSync>;
  const totals = db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM outbox').get() as {
    n: number | bigint;
    b: number | bigint;
  };
  let records = Number(totals.n);
  let bytes = Number(totals.b);
  let journalRows = Number((db.prepare('SELECT count(*) AS n FROM journal').get() as { n: number | bigint }).n);
  const counters = { dropped: 0, refused: 0, diskFull: 0 };

  const inTransaction = <T>(fn: () => T): T => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  };

  /** Deletes the oldest records until `fits(records, bytes)` holds; returns how many went. */
  const dropOldestUntil = (fits: (n: number, b: number) => boolean): number => {
    let n = records;
    let b = bytes;
    let cutoff: number | undefined;
    for (const row of st.oldest.iterate() as Iterable<{ seq: number | bigint; size: number | bigint }>) {
      if (fits(n, b)) break;
      cutoff = Number(row.seq);
      n--;
      b -= Number(row.size);
    }
    if (cutoff === undefined) return 0;
    st.deleteThrough.run(cutoff);
    const dropped = records - n;
    records = n;
    bytes = b;
    return dropped;
  };

  const deleteJournal = (completions: readonly Completion[]): void => {
    for (const c of completions) {
      if (c.journalId !== undefined && Number(st.unjournal.run(c.journalId).changes) > 0) journalRows--;
    }
  };

  /** One attempt: journal rows out, records in (under the policy), all or nothing. */
  const append = (completions: readonly Completion[], incoming: { r: OutboxRecord; headers: string; size: number }[]): AppendOutcome => {
    const before = { records, bytes, journalRows };
    try {
      return inTransaction(() => {
        deleteJournal(completions);
        const outcome: AppendOutcome = { stored: 0, dropped: 0, refused: 0 };
        for (const { r, headers, size } of incoming) {
          if (size > options.maxBytes) {
            outcome.refused++;
            outcome.reason = 'too-large';
            continue;
          }
          const full = records + 1 > options.maxRecords || bytes + size > options.maxBytes;
          if (full && options.overflow === 'stop-accepting') {
            outcome.refused++;
            outcome.reason ??= 'full';
            continue;
          }
          if (full) {
            outcome.dropped += dropOldestUntil((n, b) => n + 1 <= options.maxRecords && b + size <= options.maxBytes);
            outcome.reason ??= 'full';
          }
          st.insert.run(r.topic, r.key, r.value, headers, size);
          records++;
          bytes += size;
          outcome.stored++;
        }
        return outcome;
      });
    } catch (error) {
      ({ records, bytes, journalRows } = before);
      throw error;
    }
  };

  return {
    journal(topic, payload) {
      try {
        const id = Number(st.journal.run(topic, payload, now()).lastInsertRowid);
        journalRows++;
        return id;
      } catch (error) {
        if (!isDiskFull(error)) throw error;
        counters.diskFull++;
        return undefined;
      }
    },

    pendingJournal() {
      return (st.pending.all() as { id: number | bigint; topic: string; payload: Uint8Array; received: number | bigint }[]).map((row) => ({
        id: Number(row.id),
        topic: row.topic,
        payload: buf(row.payload) ?? Buffer.alloc(0),
        receivedAt: Number(row.received),
      }));
    },

    complete(completions) {
      const incoming = completions.flatMap((c) =>
        c.records.map((r) => {
          const headers = JSON.stringify(r.headers);
          return { r, headers, size: sizeOf(r, headers) };
        }),
      );
      let outcome: AppendOutcome;
      try {
        outcome = append(completions, incoming);
      } catch (error) {
        if (!isDiskFull(error)) throw error;
        counters.diskFull++;
        let freed = 0;
        if (options.overflow === 'drop-oldest' && records > 0) {
          // Make room for this write and some after it, so a full disk is not hit on every message.
          const target = Math.max(0, records - Math.max(incoming.length * 2, Math.ceil(records / 100), 16));
          try {
            freed = inTransaction(() => dropOldestUntil((n) => n <= target));
            outcome = append(completions, incoming);
            outcome.dropped += freed;
            outcome.reason = 'disk-full';
            counters.dropped += outcome.dropped;
            counters.refused += outcome.refused;
            return outcome;
          } catch (again) {
            if (!isDiskFull(again)) throw again;
            counters.diskFull++;
          }
        }
        // Refuse the records; the journal rows still go (deleting frees space, so it fits).
        try {
          inTransaction(() => deleteJournal(completions));
        } catch {
          // Left in the journal: replayed (and maybe stored) after a restart — at-least-once.
        }
        outcome = { stored: 0, dropped: freed, refused: incoming.length, reason: 'disk-full' };
      }
      counters.dropped += outcome.dropped;
      counters.refused += outcome.refused;
      return outcome;
    },

    peek(max) {
      return (st.peek.all(max) as { seq: number | bigint; topic: string; key: unknown; value: unknown; headers: string }[]).map((row) => ({
        seq: Number(row.seq),
        topic: row.topic,
        key: buf(row.key),
        value: buf(row.value),
        headers: JSON.parse(row.headers) as [string, string][],
      }));
    },

    acknowledge(seq) {
      inTransaction(() => {
        const gone = st.sizeThrough.get(seq) as { n: number | bigint; b: number | bigint };
        st.deleteThrough.run(seq);
        records -= Number(gone.n);
        bytes -= Number(gone.b);
      });
    },

    stats: () => ({ records, bytes, journal: journalRows, ...counters }),

    close() {
      if (db.isOpen) db.close();
    },
  };
}
