/**
 * The in-memory engine: a B+ tree ordered by `Buffer.compare` (the `sorted-btree` package:
 * O(log n) puts and ordered range scans; a sorted array would move every later entry on an
 * insert). It backs the test driver and runners without a persistent engine. Keys and values
 * are copied on put, so a caller reusing its buffers cannot change the store.
 */
import BTreeModule from 'sorted-btree';
import type { KeyValueBytesStore, RangeOptions } from './key-value-store.ts';

// sorted-btree is CommonJS: Node's default import is module.exports, whose `default` is the class.
const BTree = BTreeModule.default;

/** An in-memory {@link KeyValueBytesStore}, also able to clear itself (a wipe before a restore). */
export interface MemoryKeyValueStore extends KeyValueBytesStore {
  /** Removes every entry. */
  clear(): void;
}

const compare = (a: Buffer, b: Buffer): number => Buffer.compare(a, b);

/** Creates an empty in-memory store. */
export function createMemoryStore(): MemoryKeyValueStore {
  const tree = new BTree<Buffer, Buffer>(undefined, compare);
  return {
    get: (key) => tree.get(key),
    put(key, value) {
      if (value === null) tree.delete(key);
      else tree.set(Buffer.from(key), Buffer.from(value));
    },
    *range(from?: Buffer, to?: Buffer, options: RangeOptions = {}): Iterable<[Buffer, Buffer]> {
      if (from !== undefined && to !== undefined && Buffer.compare(from, to) > 0) return;
      if (options.reverse) {
        for (const [k, v] of tree.entriesReversed(to)) {
          if (from !== undefined && Buffer.compare(k, from) < 0) return;
          yield [k, v];
        }
        return;
      }
      for (const [k, v] of tree.entries(from)) {
        if (to !== undefined && Buffer.compare(k, to) > 0) return;
        yield [k, v];
      }
    },
    approximateCount: () => tree.size,
    clear: () => tree.clear(),
  };
}
