import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { createKeyValueStore, type KeyValueBytesStore } from '../state/key-value-store.ts';
import { createMemoryStore } from '../state/memory-store.ts';
import { metaKey } from '../state/window-key.ts';
import { countAggregation, windowStoreSerdes } from './aggregate-processor.ts';
import type { ProcessorContext } from './processor-context.ts';
import type { StreamRecord } from './stream-record.ts';
import { windowedAggregate } from './window-aggregate.ts';

const STREAM_TIME = metaKey('streamTime');

/** A bytes store that counts the writes of its stream-time entry. */
function countingStore(): { bytes: KeyValueBytesStore; streamTimeWrites: () => number } {
  const inner = createMemoryStore();
  let writes = 0;
  const bytes: KeyValueBytesStore = {
    get: (k) => inner.get(k),
    put(k, v) {
      if (k.equals(STREAM_TIME)) writes++;
      inner.put(k, v);
    },
    range: (from, to, o) => inner.range(from, to, o),
    approximateCount: () => inner.approximateCount(),
  };
  return { bytes, streamTimeWrites: () => writes };
}

/** Runs a windowed count (1 s tumbling windows, grace 0, late records to the dead letters) over `bytes`; per record its outputs or LATE. */
function counter(bytes: KeyValueBytesStore): (key: string, t: number) => string[] | 'LATE' {
  const fn = windowedAggregate(countAggregation<string>(), {
    window: { type: 'tumbling', sizeMs: 1000, graceMs: 0 },
    time: 'record',
    emit: 'update',
    late: 'dlq',
    store: 'w',
    node: 'count',
  });
  let offset = 0n;
  return (key, t) => {
    const record: StreamRecord<string, number> = {
      key,
      value: 1,
      headers: [],
      timestamp: t,
      origin: { topic: 'in', partition: 0, offset: offset++ },
    };
    const ctx = {
      store: () => createKeyValueStore('w', bytes, windowStoreSerdes),
      offset: record.origin.offset,
    } as unknown as ProcessorContext;
    try {
      return [...(fn(record, ctx) ?? [])].map((o) => `${o.key.key}@${o.key.start}=${String(o.value)}`);
    } catch (e) {
      if (e instanceof InflowError && e.code === 'LATE_RECORD') return 'LATE';
      throw e;
    }
  };
}

describe('windowed aggregation over fixed windows', () => {
  it('writes its stream time only when it passes a window close time, and judges late records as the exact stream time does, also after a restart', () => {
    const { bytes, streamTimeWrites } = countingStore();
    const count = counter(bytes);
    assert.deepEqual(count('a', 100), ['a@0=1']);
    assert.deepEqual(count('a', 300), ['a@0=2']);
    assert.deepEqual(count('b', 900), ['b@0=1']);
    assert.equal(streamTimeWrites(), 1, 'one write for the first record; the next ones pass no close time');
    assert.deepEqual(count('a', 1000), ['a@1000=1'], 'stream time 1000 closes [0, 1000)');
    assert.deepEqual(count('a', 1700), ['a@1000=2']);
    assert.equal(streamTimeWrites(), 2);
    assert.equal(count('a', 999), 'LATE', 'its window closed at 1000');
    assert.deepEqual(count('a', 1100), ['a@1000=3'], 'stream time is 1700 here, its window is open either way');
    // A restart reads the store the records left (stream time 1000 stored, 1700 seen): same decisions.
    const again = counter(bytes);
    assert.equal(again('b', 999), 'LATE');
    assert.deepEqual(again('b', 1999), ['b@1000=1']);
    assert.deepEqual(again('b', 2000), ['b@2000=1'], 'a new epoch: [1000, 2000) closes');
    assert.equal(again('b', 1999), 'LATE');
    assert.equal(streamTimeWrites(), 3);
  });
});
