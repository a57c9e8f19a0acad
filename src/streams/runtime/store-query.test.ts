import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { partitionForKey } from '../../kafka/partitioner.ts';
import { createStoreQuery, type LocalStoreState, type QueryableBytesStore, type QuerySerde, type StoreQuerySource } from './store-query.ts';

const jsonSerde: QuerySerde<unknown> = {
  serialize: (v) => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) throw new Error('objects are not keys');
    return Buffer.from(JSON.stringify(v));
  },
  deserialize: (b) => JSON.parse(b.toString()) as unknown,
};

function mapStore(entries: Record<string, unknown> = {}): QueryableBytesStore {
  const m = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(entries)) m.set(jsonSerde.serialize(k).toString('latin1'), Buffer.from(JSON.stringify(v)));
  return {
    get: (k: Buffer) => m.get(k.toString('latin1')),
    *range() {
      for (const [k, v] of [...m].sort()) yield [Buffer.from(k, 'latin1'), v] as [Buffer, Buffer];
    },
  };
}

/** A string key the default partitioner places in `partition` of `partitions`. */
export function keyIn(partition: number, partitions = 4, prefix = 'user'): string {
  for (let i = 0; ; i++) if (partitionForKey(Buffer.from(`${prefix}-${i}`), partitions) === partition) return `${prefix}-${i}`;
}

function source(local: Map<number, LocalStoreState>, owners: Record<number, string> = {}, partitions: number | null = 4): StoreQuerySource {
  return {
    stores: () => [
      {
        name: 'counts',
        keySerde: jsonSerde,
        valueSerde: jsonSerde,
        partitions: () => partitions ?? undefined,
        recordKey: (k) => Buffer.from(String(k)),
      },
    ],
    local: (store, p) => (store === 'counts' ? local.get(p) : undefined),
    owner: async (_s, p) => owners[p],
  };
}

describe('store queries', () => {
  it('answers the committed value of a key from the instance of its partition', async () => {
    const k = keyIn(2);
    const q = createStoreQuery(source(new Map([[2, { state: 'ready', store: mapStore({ [k]: { count: 3 } }) }]])));
    assert.deepEqual(await q.get('counts', k), { kind: 'value', store: 'counts', partition: 2, key: k, value: { count: 3 } });
    assert.deepEqual(q.storeNames(), ['counts']);
  });

  it('never answers with another partition’s instance: a key of a partition owned elsewhere names the owner', async () => {
    const k = keyIn(1);
    // The local partition-0 instance holds the same key (as if written there): it must not be read.
    const q = createStoreQuery(source(new Map([[0, { state: 'ready', store: mapStore({ [k]: { count: 99 } }) }]]), { 1: 'host-b:9000' }));
    assert.deepEqual(await q.get('counts', k), { kind: 'remote', store: 'counts', partition: 1, key: k, owner: 'host-b:9000' });
  });

  it('says absent for a key its partition does not hold', async () => {
    const q = createStoreQuery(source(new Map([[3, { state: 'ready', store: mapStore({ other: 1 }) }]])));
    assert.deepEqual(await q.get('counts', keyIn(3)), { kind: 'absent', store: 'counts', partition: 3, key: keyIn(3) });
  });

  it('refuses an unknown store with NOT_FOUND naming the stores there are', async () => {
    const q = createStoreQuery(source(new Map()));
    await assert.rejects(q.get('sums', 'a'), { code: 'NOT_FOUND', message: /no store "sums".*counts/ });
  });

  it('refuses a key of another type than the store’s keys with INVALID_ARGUMENT', async () => {
    const store = mapStore({ [keyIn(0)]: 1 });
    const q = createStoreQuery({ ...source(new Map()), local: () => ({ state: 'ready', store }) });
    await assert.rejects(q.get('counts', 7), { code: 'INVALID_ARGUMENT', message: /keys of type string.*type number/ });
    await assert.rejects(q.get('counts', { a: 1 }), { code: 'INVALID_ARGUMENT', message: /does not fit store "counts"/ });
  });

  it('answers UNAVAILABLE with a retry delay while the key’s partition restores', async () => {
    const q = createStoreQuery(source(new Map([[1, { state: 'restoring', restored: 10, total: 40 }]])));
    await assert.rejects(q.get('counts', keyIn(1)), (e: { code: string; details: { retryAfterS: number }; message: string }) => {
      assert.equal(e.code, 'UNAVAILABLE');
      assert.equal(e.details.retryAfterS, 1);
      assert.match(e.message, /restoring \(10 of 40/);
      return true;
    });
  });

  it('answers UNAVAILABLE before the pipeline has partitions', async () => {
    const q = createStoreQuery(source(new Map(), {}, null));
    await assert.rejects(q.get('counts', 'a'), { code: 'UNAVAILABLE' });
  });
});
