/**
 * A read-only typed view over the instances of one store in every task (the test driver's
 * `store(name)`): each key lives in the instance of its partition's task, so `get` asks each
 * instance and scans list each instance's entries in key order, one task after the other.
 */
import { InflowError } from '../../errors.ts';
import {
  createKeyValueStore,
  type KeyValue,
  type KeyValueBytesStore,
  type KeyValueStore,
  type StoreSerdes,
} from '../state/key-value-store.ts';

/** A view of store `name` over the instances `instances()` returns at each call. */
export function createStoreView<K, V>(
  name: string,
  instances: () => readonly KeyValueBytesStore[],
  serdes: StoreSerdes<unknown, unknown> = {},
): KeyValueStore<K, V> {
  const typed = (): KeyValueStore<K, V>[] => instances().map((s) => createKeyValueStore(name, s, serdes as StoreSerdes<K, V>));
  const readOnly = (): never => {
    throw new InflowError('FAILED_PRECONDITION', `the test driver's view of store "${name}" is read-only; write through the topology`);
  };
  return {
    name,
    get(key) {
      for (const s of typed()) {
        const v = s.get(key);
        if (v !== undefined) return v;
      }
      return undefined;
    },
    put: readOnly,
    delete: readOnly,
    *range(from?: K, to?: K): Iterable<KeyValue<K, V>> {
      for (const s of typed()) yield* s.range(from, to);
    },
    *all(): Iterable<KeyValue<K, V>> {
      for (const s of typed()) yield* s.all();
    },
  };
}
