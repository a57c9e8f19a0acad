/**
 * Interactive queries (Kafka Streams' `KafkaStreams#store` + `queryMetadataForKey`): a pipeline's
 * state stores read by key from outside the stream — the pipeline as an online feature store.
 *
 * - **Committed state only.** A query reads the store engine, never the transactional overlay
 *   of records not yet committed: under exactly-once an answer never shows an update that an
 *   abort could still take back.
 * - **The key's partition decides.** A store has one instance per input partition. The key is
 *   serialized as the store's input records' keys are (the source key serde) and mapped to its
 *   partition with Kafka's default partitioner (`partitionForKey`), as the producers of the
 *   input did; only that partition's instance is read — never another partition's, so a query
 *   during a rebalance answers with the owner's value, "restoring", or "owned elsewhere", and
 *   never with a value that belongs to another partition. Like Kafka Streams, this assumes the
 *   store is keyed by the input record key (aggregations after groupByKey/groupBy are).
 * - **Several instances.** A partition this instance does not own answers with the owner's
 *   advertised query address (`applicationServer`, from the group's membership), or none when
 *   the group is between assignments.
 * - **Window stores** (windowed aggregations) answer `fetch(key, from, to)` like Kafka Streams'
 *   `ReadOnlyWindowStore.fetch(key, timeFrom, timeTo)`: the key's windows whose start lies in
 *   [from, to] (ms, inclusive), in start order — one range scan of the window keys
 *   (state/window-key.ts). A key lookup (`get`) on a window store is refused, and `fetch` on a
 *   key-value store.
 */
import { InflowError } from '../../errors.ts';
import { partitionForKey } from '../../kafka/partitioner.ts';
import { encodeOrderedKey } from '../state/ordered-key.ts';
import { isWindowOf, parseWindowKey, windowRange } from '../state/window-key.ts';

/** The part of a bytes store a query reads (the engine of a store instance: committed data). */
export interface QueryableBytesStore {
  get(key: Buffer): Buffer | undefined;
  range(from?: Buffer, to?: Buffer): Iterable<[Buffer, Buffer]>;
}

/** Bytes ↔ value of a store's keys or values. */
export interface QuerySerde<T> {
  serialize(value: T): Buffer;
  deserialize(bytes: Buffer): T;
}

/** What this instance holds of one store partition. */
export type LocalStoreState =
  | { readonly state: 'ready'; readonly store: QueryableBytesStore }
  /** Assigned here, still replaying its changelog: ask again in a moment. */
  | { readonly state: 'restoring'; readonly restored?: number; readonly total?: number };

/** A store a topology declares, as queries need it. */
export interface QueryableStoreInfo {
  readonly name: string;
  /** Default key-value. */
  readonly kind?: 'key-value' | 'window' | 'session';
  readonly keySerde: QuerySerde<unknown>;
  readonly valueSerde: QuerySerde<unknown>;
  /** Partitions of the store's input topics (its instances); undefined before the first assignment. */
  partitions(): number | undefined;
  /** The key as the input records carry it (the source's key serde), for the partitioner. */
  recordKey(key: unknown): Buffer | Promise<Buffer>;
}

/** What the runtime offers queries: the declared stores and the local instances. */
export interface StoreQuerySource {
  stores(): readonly QueryableStoreInfo[];
  /** The instance of `store` for `partition` on this instance, or undefined when not assigned here. */
  local(store: string, partition: number): LocalStoreState | undefined;
  /** The query address of the member that owns `partition` of the store's input (undefined: none known). */
  owner(store: string, partition: number): Promise<string | undefined>;
  /** This instance's own advertised query address, when it has one. */
  readonly self?: string;
}

/** The answer to a key query. */
export type KeyQueryResult =
  | { readonly kind: 'value'; readonly store: string; readonly partition: number; readonly key: unknown; readonly value: unknown }
  | { readonly kind: 'absent'; readonly store: string; readonly partition: number; readonly key: unknown }
  /** Another instance owns the key's partition: ask it (`owner` undefined while the group rebalances). */
  | { readonly kind: 'remote'; readonly store: string; readonly partition: number; readonly key: unknown; readonly owner?: string };

/** One window of a window or session store. */
export interface QueriedWindow {
  /** Window start, ms since the epoch. */
  readonly start: number;
  /** Sessions only (a fixed window ends at start + its size). */
  readonly end?: number;
  readonly value: unknown;
}

/** The answer to a window fetch. */
export type WindowQueryResult =
  | {
      readonly kind: 'windows';
      readonly store: string;
      readonly partition: number;
      readonly key: unknown;
      readonly windows: readonly QueriedWindow[];
    }
  | { readonly kind: 'remote'; readonly store: string; readonly partition: number; readonly key: unknown; readonly owner?: string };

/** Seconds a caller should wait before asking again about a restoring store (HTTP Retry-After). */
export const RESTORING_RETRY_AFTER_S = 1;

/** Key type names as queries and errors name them. */
function keyType(key: unknown): string {
  if (key === null) return 'null';
  if (Buffer.isBuffer(key)) return 'bytes';
  if (Array.isArray(key)) return 'array';
  return typeof key;
}

/** Reads stores by key. */
export interface StoreQuery {
  /** Names of the queryable stores. */
  storeNames(): string[];
  /**
   * The committed value of `key` in `store`. Throws NOT_FOUND for an unknown store,
   * INVALID_ARGUMENT for a key that does not fit the store's keys, UNAVAILABLE (details:
   * `retryAfterS`) while the key's partition restores here or before the first assignment.
   */
  get(store: string, key: unknown): Promise<KeyQueryResult>;
  /**
   * The committed windows of `key` in window or session store `store` whose start lies in
   * [`from`, `to`] (ms, inclusive), in start order. Errors as {@link get}; INVALID_ARGUMENT for a
   * key-value store or bounds that are not integers with from ≤ to.
   */
  fetch(store: string, key: unknown, from: number, to: number): Promise<WindowQueryResult>;
}

export function createStoreQuery(source: StoreQuerySource): StoreQuery {
  const info = (name: string): QueryableStoreInfo => {
    const all = source.stores();
    const found = all.find((s) => s.name === name);
    if (found === undefined) {
      throw new InflowError(
        'NOT_FOUND',
        `no store "${name}" in this pipeline; queryable stores: ${all.map((s) => s.name).join(', ') || '(none)'}`,
        { details: { store: name } },
      );
    }
    return found;
  };
  /** The key's partition, and this instance's ready store for it, or where it lives. */
  const locate = async (
    store: QueryableStoreInfo,
    key: unknown,
  ): Promise<
    | { kind: 'local'; partition: number; local: LocalStoreState & { state: 'ready' } }
    | { kind: 'remote'; store: string; partition: number; key: unknown; owner?: string }
  > => {
    const name = store.name;
    const partitions = store.partitions();
    if (partitions === undefined) {
      throw new InflowError('UNAVAILABLE', `store "${name}" has no partitions yet: the pipeline has not joined its group`, {
        details: { store: name, retryAfterS: RESTORING_RETRY_AFTER_S },
      });
    }
    let recordKey: Buffer;
    try {
      recordKey = await store.recordKey(key);
    } catch (e) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `key ${JSON.stringify(key)} does not serialize as store "${name}"'s input keys do: ${(e as Error).message}`,
        { cause: e, details: { store: name } },
      );
    }
    const partition = partitionForKey(recordKey, partitions);
    const local = source.local(name, partition);
    if (local === undefined) {
      const owner = await source.owner(name, partition);
      return { kind: 'remote', store: name, partition, key, ...(owner === undefined ? {} : { owner }) };
    }
    if (local.state === 'restoring') {
      const progress = local.total === undefined ? '' : ` (${local.restored ?? 0} of ${local.total} changelog records)`;
      throw new InflowError('UNAVAILABLE', `store "${name}" partition ${partition} is restoring${progress}; retry shortly`, {
        details: { store: name, partition, retryAfterS: RESTORING_RETRY_AFTER_S },
      });
    }
    return { kind: 'local', partition, local };
  };
  return {
    storeNames: () => source.stores().map((s) => s.name),
    async get(name, key) {
      const store = info(name);
      if (store.kind === 'window' || store.kind === 'session') {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `store "${name}" is a ${store.kind} store: fetch a key's windows (/v1/stores/{store}/keys/{key}/windows?from=&to=) instead`,
          { details: { store: name } },
        );
      }
      let keyBytes: Buffer;
      try {
        keyBytes = store.keySerde.serialize(key);
      } catch (e) {
        throw new InflowError('INVALID_ARGUMENT', `key ${JSON.stringify(key)} does not fit store "${name}": ${(e as Error).message}`, {
          cause: e,
          details: { store: name },
        });
      }
      const at = await locate(store, key);
      if (at.kind === 'remote') return at;
      const { partition, local } = at;
      const value = local.store.get(keyBytes);
      if (value === undefined) {
        // A key of another type than the store's would never be found: say so instead of "absent".
        for (const [k] of local.store.range()) {
          const stored = keyType(store.keySerde.deserialize(k));
          if (stored !== keyType(key)) {
            throw new InflowError(
              'INVALID_ARGUMENT',
              `store "${name}" has keys of type ${stored}; the query's key ${JSON.stringify(key)} is of type ${keyType(key)}`,
              { details: { store: name, expected: stored, got: keyType(key) } },
            );
          }
          break;
        }
        return { kind: 'absent', store: name, partition, key };
      }
      return { kind: 'value', store: name, partition, key, value: store.valueSerde.deserialize(value) };
    },
    async fetch(name, key, from, to) {
      const store = info(name);
      const session = store.kind === 'session';
      if (store.kind !== 'window' && !session) {
        throw new InflowError('INVALID_ARGUMENT', `store "${name}" is a key-value store: read a key with /v1/stores/{store}/keys/{key}`, {
          details: { store: name },
        });
      }
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from > to) {
        throw new InflowError('INVALID_ARGUMENT', `window bounds must be integer ms with from ≤ to; got from=${from}, to=${to}`, {
          details: { store: name },
        });
      }
      let keyBytes: Buffer;
      try {
        // Window keys hold the group key in the order-preserving encoding (api/window-aggregate.ts).
        keyBytes = encodeOrderedKey(key);
      } catch (e) {
        throw new InflowError('INVALID_ARGUMENT', `key ${JSON.stringify(key)} does not fit store "${name}": ${(e as Error).message}`, {
          cause: e,
          details: { store: name },
        });
      }
      const at = await locate(store, key);
      if (at.kind === 'remote') return at;
      const windows: QueriedWindow[] = [];
      for (const [k, v] of at.local.store.range(...windowRange(keyBytes, from, to, session))) {
        // Sliding-window stores also keep raw values under longer keys: not windows.
        if (!isWindowOf(k, keyBytes, session)) continue;
        const w = parseWindowKey(k, session);
        windows.push({ start: w.start, ...(session ? { end: w.end } : {}), value: store.valueSerde.deserialize(v) });
      }
      return { kind: 'windows', store: name, partition: at.partition, key, windows };
    },
  };
}
