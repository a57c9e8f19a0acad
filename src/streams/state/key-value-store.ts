/**
 * The state store interface, at two levels. Engines (in-memory, persistent, the transactional
 * overlay) implement the bytes level, {@link KeyValueBytesStore}: synchronous, because stateful
 * nodes run synchronously in offset order per partition. Operators and `process` functions see
 * the typed level, {@link KeyValueStore}: a bytes store plus a key and a value serde. Keys are
 * ordered by unsigned byte comparison (`Buffer.compare`), so the default key encoding
 * ({@link orderedKeySerde}) keeps numbers and strings in their natural order and range scans
 * work on them and on window keys (`window-key.ts`).
 */
import { InflowError } from '../../errors.ts';
import { decodeOrderedKey, encodeOrderedKey, type OrderedKey } from './ordered-key.ts';

/** A key and a value (the shape range scans yield; the same shape as the streams API's). */
export interface KeyValue<K, V> {
  readonly key: K;
  readonly value: V;
}

/** Options of a range scan. */
export interface RangeOptions {
  /** Largest key first. */
  readonly reverse?: boolean;
}

/**
 * An engine's store: bytes in, bytes out, synchronous. `range(from, to)` yields the entries with
 * `from <= key <= to` (both inclusive; a missing bound is open) in key order.
 */
export interface KeyValueBytesStore {
  get(key: Buffer): Buffer | undefined;
  /** Writes `value`; `null` deletes the key (a tombstone in the changelog). */
  put(key: Buffer, value: Buffer | null): void;
  range(from?: Buffer, to?: Buffer, options?: RangeOptions): Iterable<[Buffer, Buffer]>;
  /** Entries in the store, approximately (an engine may count tombstones not yet compacted). */
  approximateCount(): number;
}

/**
 * Marks a bytes store whose {@link OWNED_PUT} method takes buffers without copying them: the
 * typed store calls it with buffers its serdes just made and nobody else holds, so the
 * transactional overlay's defensive copies are skipped (two allocations and copies per write
 * on the stateful hot path: bench/streams/stateful-hops.ts).
 */
export const OWNED_PUT: unique symbol = Symbol('inflow.store.ownedPut');

/** A bytes store that also takes buffers it may keep as they are (the caller gives them up). */
export interface OwnedPutStore extends KeyValueBytesStore {
  [OWNED_PUT](key: Buffer, value: Buffer | null): void;
}

/** Turns keys or values into bytes and back, synchronously (stores are synchronous). */
export interface StoreSerde<T> {
  serialize(value: T): Buffer;
  deserialize(bytes: Buffer): T;
  /**
   * `serialize` returns a new Buffer each call that it keeps no reference to, so a store may keep
   * it without copying (the transactional overlay otherwise copies every key and value it logs).
   */
  readonly fresh?: boolean;
}

/** A typed store: what `process` functions and aggregations read and write. */
export interface KeyValueStore<K, V> {
  readonly name: string;
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  delete(key: K): void;
  /** Entries with `from <= key <= to` in key order (a missing bound is open). */
  range(from?: K, to?: K): Iterable<KeyValue<K, V>>;
  all(): Iterable<KeyValue<K, V>>;
}

/** Keys a store can order: see {@link orderedKeySerde}. */
export type StoreKey = OrderedKey;

/**
 * The default key serde: an order-preserving, prefix-free encoding of strings, numbers,
 * booleans, null, bigints, Buffers and arrays of them (composite keys), so byte order is the
 * keys' natural order. Anything else (an object, NaN, a function) is refused with
 * `SERIALIZATION`, which a stream turns into a dead letter.
 */
export const orderedKeySerde: StoreSerde<StoreKey> = Object.freeze({
  serialize: (key: StoreKey) => encodeOrderedKey(key),
  deserialize: (bytes: Buffer) => decodeOrderedKey(bytes),
  fresh: true,
});

/** The default value serde: JSON (UTF-8). */
export const jsonValueSerde: StoreSerde<unknown> = Object.freeze({
  serialize(value: unknown): Buffer {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw new InflowError('SERIALIZATION', `store value does not serialize to JSON: ${(e as Error).message}`, { cause: e });
    }
    if (text === undefined) throw new InflowError('SERIALIZATION', `store value of type ${typeof value} does not serialize to JSON`);
    return Buffer.from(text);
  },
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
  fresh: true,
});

/** Serdes of a typed store; missing ones default to {@link orderedKeySerde} and {@link jsonValueSerde}. */
export interface StoreSerdes<K, V> {
  readonly key?: StoreSerde<K>;
  readonly value?: StoreSerde<V>;
}

/** A typed view of `bytes` named `name`: keys and values go through `serdes`. */
export function createKeyValueStore<K = StoreKey, V = unknown>(
  name: string,
  bytes: KeyValueBytesStore,
  serdes: StoreSerdes<K, V> = {},
): KeyValueStore<K, V> {
  return new TypedStore(name, bytes, (serdes.key ?? orderedKeySerde) as StoreSerde<K>, (serdes.value ?? jsonValueSerde) as StoreSerde<V>);
}

/**
 * The typed store of {@link createKeyValueStore}. A class, not closures: the runtime opens one per
 * record and store, so its methods live on the prototype (fewer allocations per record).
 */
class TypedStore<K, V> implements KeyValueStore<K, V> {
  readonly name: string;
  readonly #bytes: KeyValueBytesStore;
  readonly #key: StoreSerde<K>;
  readonly #value: StoreSerde<V>;
  /** Writes reach the bytes store without copies: it takes them and both serdes make fresh buffers. */
  readonly #owned: boolean;

  constructor(name: string, bytes: KeyValueBytesStore, key: StoreSerde<K>, value: StoreSerde<V>) {
    this.name = name;
    this.#bytes = bytes;
    this.#key = key;
    this.#value = value;
    this.#owned = OWNED_PUT in bytes && key.fresh === true && value.fresh === true;
    Object.freeze(this);
  }

  #put(key: Buffer, value: Buffer | null): void {
    if (this.#owned) (this.#bytes as OwnedPutStore)[OWNED_PUT](key, value);
    else this.#bytes.put(key, value);
  }

  get(key: K): V | undefined {
    const v = this.#bytes.get(this.#key.serialize(key));
    return v === undefined ? undefined : this.#value.deserialize(v);
  }

  put(key: K, value: V): void {
    // undefined is no value: storing it would read back as a different thing (JSON has no undefined).
    if (value === undefined) {
      throw new InflowError('INVALID_ARGUMENT', `store "${this.name}": put() got undefined; use delete(key) to remove a key`);
    }
    this.#put(this.#key.serialize(key), this.#value.serialize(value));
  }

  delete(key: K): void {
    this.#put(this.#key.serialize(key), null);
  }

  range(from?: K, to?: K): Iterable<KeyValue<K, V>> {
    const k = this.#key;
    return this.#typed(
      this.#bytes.range(from === undefined ? undefined : k.serialize(from), to === undefined ? undefined : k.serialize(to)),
    );
  }

  all(): Iterable<KeyValue<K, V>> {
    return this.#typed(this.#bytes.range());
  }

  *#typed(entries: Iterable<[Buffer, Buffer]>): Iterable<KeyValue<K, V>> {
    for (const [k, v] of entries) yield { key: this.#key.deserialize(k), value: this.#value.deserialize(v) };
  }
}
