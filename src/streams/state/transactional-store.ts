/**
 * The transactional overlay over a store's engine (issue 17, exactly-once with state). Writes
 * never reach the engine while processing: each input record's writes form its *write set*;
 * reads see the engine overlaid by every write not yet folded (the latest write wins). When the
 * record fails, its write set is dropped. A commit covers the write sets of the records released
 * before it ({@link TransactionalStore.prepareCommit}): their writes, the latest per key, become
 * the changelog records the commit produces (in its transaction, exactly-once; before its offset
 * commit, at-least-once), and once the commit succeeded they are folded into the engine in one
 * engine transaction. An abort or rewind discards every write set not folded — no
 * wipe-and-restore.
 *
 * One changelog record per key and commit, not per write (Kafka Streams does the same with its
 * record cache on, the default): a windowed aggregation writes its window and its stream time on
 * every record, and producing each write was most of the records a stateful pipeline produced
 * (bench/streams/stateful-compare.ts, BENCHMARKS.md stateful rows). Restoring reads the latest
 * value per key either way; the changelog only skips values a later write in the same commit
 * replaced.
 *
 * Writes are kept in the order they happened: the latest per key wins, so the engine ends as
 * reads saw it. Memory is bounded by the writes between two commits.
 */
import BTreeModule from 'sorted-btree';
import type { ProducerRecord } from '../../kafka/types.ts';
import { OWNED_PUT, type OwnedPutStore, type RangeOptions } from './key-value-store.ts';
import type { StoreEngine, StoreWrite } from './store-engine.ts';

/** Where a store's changelog records go: the task's partition of the changelog topic. */
export interface ChangelogTarget {
  readonly topic: string;
  readonly partition: number;
}

interface WriteSet {
  readonly writer: string;
  released: boolean;
  /** A prepared commit covers it: no later commit covers it again. */
  covered: boolean;
}

interface LoggedWrite {
  readonly set: WriteSet;
  readonly id: string;
  readonly write: StoreWrite;
}

/** Map key of a bytes key: latin1 maps bytes 1:1 to UTF-16 code units. */
const id = (key: Buffer): string => key.toString('latin1');

/** The store as one writer sees it (one object per record: its methods live on the prototype). */
class WriterView implements OwnedPutStore {
  readonly #store: TransactionalStore;
  readonly #writer: string;
  constructor(store: TransactionalStore, writer: string) {
    this.#store = store;
    this.#writer = writer;
  }
  get(key: Buffer): Buffer | undefined {
    return this.#store.get(key);
  }
  put(key: Buffer, value: Buffer | null): void {
    // Copies: a caller reusing its buffers must not change what is logged.
    this.#store.write(this.#writer, Buffer.from(key), value === null ? null : Buffer.from(value));
  }
  [OWNED_PUT](key: Buffer, value: Buffer | null): void {
    this.#store.write(this.#writer, key, value);
  }
  range(from?: Buffer, to?: Buffer, options?: RangeOptions): Iterable<[Buffer, Buffer]> {
    return this.#store.range(from, to, options);
  }
  approximateCount(): number {
    return this.#store.approximateCount();
  }
}

// sorted-btree is CommonJS: Node's default import is module.exports, whose `default` is the class.
const BTree = BTreeModule.default;
type Overlay = InstanceType<typeof BTree<string, StoreWrite>>;
/**
 * Order of overlay keys. Latin1 strings compare by UTF-16 code unit, which is the byte value: the
 * same order as `Buffer.compare` on the keys, so the overlay merges with engine scans.
 */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const emptyOverlay = (): Overlay => new BTree<string, StoreWrite>(undefined, byCodeUnit);

/**
 * What one commit covers in one store: the write sets released when it began and their writes,
 * the latest per key. Produced as changelog records before the commit, folded after it.
 */
export interface PreparedCommit {
  /** The changelog records of the covered writes (empty without a changelog). */
  readonly changelog: readonly ProducerRecord[];
  /** The store's abort count when prepared: an abort since then voids it. */
  readonly epoch: number;
  readonly sets: ReadonlySet<unknown>;
  /** The latest covered write per key (latin1 of the key bytes). */
  readonly writes: ReadonlyMap<string, StoreWrite>;
}

export class TransactionalStore {
  readonly name: string;
  readonly engine: StoreEngine;
  readonly #changelog: ChangelogTarget | undefined;
  readonly #sets = new Map<string, WriteSet>();
  #log: LoggedWrite[] = [];
  /** The latest unfolded write per key: what reads see before the engine. */
  #latest = new Map<string, StoreWrite>();
  /**
   * {@link TransactionalStore.#latest} in key order (a B+ tree), for range scans: a scan takes
   * the entries in range in O(log n + k). A windowed aggregation scanned its expiry index on
   * every record, and copying, filtering and sorting the unfolded writes per scan was 39 % of
   * the stateful pipeline's CPU (bench/streams/stateful-compare.ts). It is brought up to date
   * when a scan needs it ({@link TransactionalStore.#ordered}), not on every write: most
   * records only get and put, and keeping the tree ordered on each write cost more than the
   * hash map that answers their reads (bench/streams/stateful-store.ts).
   */
  #tree: Overlay | undefined;
  /** Keys written since {@link TransactionalStore.#tree} was last brought up to date. */
  #unordered: string[] = [];
  /** Aborts so far: a commit prepared before an abort folds nothing. */
  #epoch = 0;
  /** The write set written last (forgotten when its set goes: drop, fold, abort). */
  #lastSet: WriteSet | undefined;

  /** `changelog` undefined: a store without a changelog (its writes produce no records). */
  constructor(name: string, engine: StoreEngine, changelog: ChangelogTarget | undefined) {
    this.name = name;
    this.engine = engine;
    this.#changelog = changelog;
  }

  /** Write sets not yet folded. */
  get pendingWriters(): number {
    return this.#sets.size;
  }

  /** The store as `writer` (an input record) sees it: reads see every unfolded write; writes go to its write set. */
  view(writer: string): OwnedPutStore {
    return new WriterView(this, writer);
  }

  approximateCount(): number {
    return this.engine.approximateCount() + this.#latest.size;
  }

  get(key: Buffer): Buffer | undefined {
    const pending = this.#latest.get(id(key));
    if (pending) return pending[1] ?? undefined;
    return this.engine.get(key);
  }

  /** The unfolded writes in key order, brought up to date with the writes since the last scan. */
  #ordered(): Overlay {
    let tree = this.#tree;
    if (tree === undefined) {
      tree = emptyOverlay();
      for (const [k, w] of this.#latest) tree.set(k, w);
      this.#tree = tree;
    } else for (const k of this.#unordered) tree.set(k, this.#latest.get(k) as StoreWrite);
    this.#unordered = [];
    return tree;
  }

  *range(from?: Buffer, to?: Buffer, options: RangeOptions = {}): Iterable<[Buffer, Buffer]> {
    if (from !== undefined && to !== undefined && Buffer.compare(from, to) > 0) return;
    const reverse = options.reverse === true;
    const pending: StoreWrite[] = [];
    if (this.#latest.size > 0) {
      const overlay = this.#ordered();
      const low = from === undefined ? (overlay.minKey() as string) : id(from);
      const high = to === undefined ? (overlay.maxKey() as string) : id(to);
      if (low <= high) overlay.forRange(low, high, true, (_k, write) => void pending.push(write));
      if (reverse) pending.reverse();
    }
    const before = (a: Buffer, b: Buffer): boolean => (reverse ? Buffer.compare(a, b) > 0 : Buffer.compare(a, b) < 0);
    let i = 0;
    for (const [k, v] of this.engine.range(from, to, options)) {
      // Overlay entries up to and including the engine's key come first (in scan order).
      for (let p = pending[i]; p !== undefined && !before(k, p[0]); p = pending[++i]) if (p[1] !== null) yield [p[0], p[1]];
      // An overlaid key was yielded from the overlay above (or deleted there).
      if (!this.#latest.has(id(k))) yield [k, v];
    }
    for (; i < pending.length; i++) {
      const p = pending[i] as StoreWrite;
      if (p[1] !== null) yield [p[0], p[1]];
    }
  }

  /**
   * Adds a write to `writer`'s write set. The buffers are kept as they are: the caller hands them
   * over (a view's `put` copies first).
   */
  write(writer: string, key: Buffer, value: Buffer | null): void {
    // A record writes several times in a row: its set is usually the last one written.
    let set = this.#lastSet;
    if (set === undefined || set.writer !== writer) {
      set = this.#sets.get(writer);
      if (!set) {
        set = { writer, released: false, covered: false };
        this.#sets.set(writer, set);
      }
      this.#lastSet = set;
    }
    const write: StoreWrite = [key, value];
    const k = id(key);
    this.#log.push({ set, id: k, write });
    this.#latest.set(k, write);
    if (this.#tree !== undefined) this.#unordered.push(k);
  }

  /** `writer`'s outputs were handed to the producer: the next commit covers its writes. */
  released(writer: string): void {
    const set = this.#sets.get(writer);
    if (set) set.released = true;
  }

  /** `writer` failed: its writes never happened. */
  drop(writer: string): void {
    const set = this.#sets.get(writer);
    if (!set) return;
    this.#sets.delete(writer);
    this.#lastSet = undefined;
    this.#log = this.#log.filter((w) => w.set !== set);
    this.#rebuildOverlay();
  }

  /**
   * What a commit starting now covers: every released write set no earlier prepared commit
   * covers, its writes reduced to the latest per key (in the order they were made) and, with a
   * changelog, as changelog records.
   */
  prepareCommit(): PreparedCommit {
    const sets = new Set<WriteSet>();
    for (const set of this.#sets.values()) {
      if (!set.released || set.covered) continue;
      set.covered = true;
      sets.add(set);
    }
    const writes = new Map<string, StoreWrite>();
    if (sets.size > 0) for (const w of this.#log) if (sets.has(w.set)) writes.set(w.id, w.write);
    const target = this.#changelog;
    const changelog: ProducerRecord[] = [];
    if (target)
      for (const [key, value] of writes.values()) changelog.push({ topic: target.topic, partition: target.partition, key, value });
    return { changelog, epoch: this.#epoch, sets, writes };
  }

  /**
   * After the commit of `prepared` succeeded: writes its writes into the engine in one engine
   * transaction and forgets its write sets. Returns how many write sets were folded (0 when an
   * abort came in between: those writes were discarded). A failing engine write (a full store)
   * throws and keeps the overlay.
   */
  fold(prepared: PreparedCommit = this.prepareCommit()): number {
    if (prepared.epoch !== this.#epoch) return 0;
    const sets = prepared.sets as ReadonlySet<WriteSet>;
    if (sets.size === 0) return 0;
    this.engine.write(prepared.writes.values());
    for (const set of sets) if (this.#sets.get(set.writer) === set) this.#sets.delete(set.writer);
    this.#lastSet = undefined;
    this.#log = this.#log.filter((w) => !sets.has(w.set));
    // A key whose latest write was folded reads from the engine now; one written again since keeps its newer write.
    for (const [k, w] of prepared.writes) if (this.#latest.get(k) === w) this.#latest.delete(k);
    this.#tree = undefined;
    this.#unordered = [];
    return sets.size;
  }

  /** Abort, rewind or revocation: every write not folded is discarded. */
  abort(): void {
    this.#epoch++;
    this.#sets.clear();
    this.#lastSet = undefined;
    this.#log = [];
    this.#latest = new Map();
    this.#tree = undefined;
    this.#unordered = [];
  }

  #rebuildOverlay(): void {
    const latest = new Map<string, StoreWrite>();
    for (const w of this.#log) latest.set(w.id, w.write);
    this.#latest = latest;
    this.#tree = undefined;
    this.#unordered = [];
  }
}
