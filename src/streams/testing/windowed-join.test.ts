import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
const T0 = 1_700_000_000_000;

function topology() {
  const b = createStreamsBuilder();
  const predictions = b.stream('predictions', serdes);
  const labels = b.stream('labels', serdes);
  predictions
    .windowedJoin(labels, (p, l, key) => ({ id: key, predicted: p?.label, actual: l?.label }), {
      windowMs: 10_000,
      graceMs: 2_000,
      name: 'scored',
    })
    .to('joined', serdes);
  return b.build();
}

describe('windowed stream-stream join', () => {
  it('joins records of both streams with the same key at most the window apart, in either order, dropping late ones and expiring old ones', async () => {
    const t = topology();
    assert.match(t.describe(), /Sub-topology: 0 \(tasks 0_<partition> over \[predictions, labels\]\)/);
    const d = await createTopologyTestDriver(t);
    try {
      const pipe = (topic: string, key: string, label: number, at: number) => d.pipe(topic, key, { label }, { serdes, timestamp: T0 + at });
      await pipe('predictions', 'a', 1, 0);
      await pipe('labels', 'a', 1, 5_000); // 5 s later: in the window
      await pipe('labels', 'b', 0, 1_000); // the label first, its prediction 9 s later: in the window
      await pipe('predictions', 'b', 0, 10_000);
      await pipe('predictions', 'c', 1, 11_000);
      await pipe('labels', 'c', 0, 21_500); // 10.5 s later: outside the window
      await d.flush();
      const out = (await d.read('joined', serdes)).map((r) => [r.value?.id, r.value?.predicted, r.value?.actual, r.timestamp - T0]);
      assert.deepEqual(out.sort(), [
        ['a', 1, 1, 5_000],
        ['b', 0, 0, 10_000],
      ]);
      // Labels' stream time 40 s: a label before 40 − 10 − 2 = 28 s is late. d's prediction (29 s) is
      // kept; its label at 27 s is 2 s from it but late (its window closed): dropped, no output for d.
      await pipe('predictions', 'c', 1, 40_000);
      await pipe('labels', 'a', 1, 40_000);
      await pipe('predictions', 'd', 1, 29_000);
      await pipe('labels', 'd', 1, 27_000);
      await d.flush();
      assert.equal((await d.read('joined', serdes)).length, 2, 'nothing joined after the first two');
      // Expiry: records before min(stream times) − 2 × window − grace = 18 s are gone from both sides.
      const records = (store: string) => [...d.store<unknown[]>(store).all()].filter((e) => e.key[0] === 'r');
      const keys = (store: string) => records(store).map((e) => [e.key[1], (e.key[2] as number) - T0]);
      assert.deepEqual(keys('scored-left').sort(), [
        ['c', 40_000],
        ['d', 29_000],
      ]);
      assert.deepEqual(keys('scored-right').sort(), [
        ['a', 40_000],
        ['c', 21_500],
      ]);
      // Each side's store: its 2 records, their 2 time-index entries and its stream time.
      assert.equal([...d.store('scored-left').all()].length, 5);
      assert.equal([...d.store('scored-right').all()].length, 5);
      assert.deepEqual([...t.stores.keys()].sort(), ['scored-left', 'scored-right'], 'two stores, two changelogs');
    } finally {
      await d.close();
    }
  });

  for (const type of ['left', 'outer'] as const) {
    it(`${type === 'left' ? 'a left' : 'an outer'} join emits a record without a partner only once its window and grace have closed, and never one that found a partner late`, async () => {
      const b = createStreamsBuilder();
      const predictions = b.stream('predictions', serdes);
      const labels = b.stream('labels', serdes);
      type V = Record<string, unknown> | null | undefined;
      const joiner = (p: V, l: V, key: string | null) => ({
        id: key,
        predicted: p?.label ?? 'none',
        actual: l?.label ?? 'none',
      });
      const options = { windowMs: 10_000, graceMs: 2_000, name: 'scored' };
      (type === 'left' ? predictions.windowedLeftJoin(labels, joiner, options) : predictions.windowedOuterJoin(labels, joiner, options)).to(
        'joined',
        serdes,
      );
      const t = b.build();
      // Kafka Streams' layout: a store per side and one outer-join store.
      assert.deepEqual([...t.stores.keys()].sort(), ['scored-left', 'scored-outer', 'scored-right']);
      const d = await createTopologyTestDriver(t);
      try {
        const pipe = (topic: string, key: string, label: number, at: number) =>
          d.pipe(topic, key, { label }, { serdes, timestamp: T0 + at });
        let seen = 0;
        /** The outputs since the last call. */
        const read = async () => {
          const all = (await d.read('joined', serdes)).map((r) => [r.value?.id, r.value?.predicted, r.value?.actual, r.timestamp - T0]);
          const fresh = all.slice(seen);
          seen = all.length;
          return fresh;
        };
        await pipe('predictions', 'a', 1, 0);
        await pipe('labels', 'a', 1, 5_000);
        await pipe('predictions', 'b', 1, 1_000);
        await pipe('predictions', 'c', 0, 2_000);
        await pipe('labels', 'c', 0, 20_000); // 18 s from c's prediction: no pair
        await d.flush();
        // Labels' stream time 20 s: b (1 s) and c (2 s) could still meet a label up to 11 and 12 s, which
        // is not late until the labels' stream time passes 11 + 12 = 23 and 24 s. Nothing eager.
        assert.deepEqual(await read(), [['a', 1, 1, 5_000]]);
        await pipe('predictions', 'd', 1, 25_000);
        await pipe('labels', 'd', 1, 33_000); // d's partner, 8 s later: joined, so d never goes out alone
        await pipe('labels', 'x', 1, 30_000);
        await d.flush();
        // Labels at 33 s close the windows of predictions before 33 − 2 × 10 − 2 = 11 s: b and c, oldest first.
        assert.deepEqual(await read(), [
          ['b', 1, 'none', 1_000],
          ['c', 0, 'none', 2_000],
          ['d', 1, 1, 33_000],
        ]);
        await pipe('labels', 'z', 1, 60_000);
        // e (14 s) is not late for the predictions (stream time 25 s − 12 s), but its window closed
        // for the labels (60 s − 22 s): no label can still join it, so it goes out at once.
        await pipe('predictions', 'e', 1, 14_000);
        await pipe('predictions', 'y', 1, 50_000);
        await d.flush();
        const last = await read();
        assert.deepEqual(
          last,
          type === 'left'
            ? [['e', 1, 'none', 14_000]]
            : // Predictions at 50 s close the labels' windows before 28 s: c's label (20 s); x (30 s) still waits.
              [
                ['e', 1, 'none', 14_000],
                ['c', 'none', 0, 20_000],
              ],
        );
        const held = [...d.store<unknown[]>('scored-outer').all()].map((e) => [e.key[0], e.key[2], (e.key[1] as number) - T0]);
        assert.deepEqual(
          held.sort(),
          type === 'left'
            ? [[0, 'y', 50_000]]
            : [
                [0, 'y', 50_000],
                [1, 'x', 30_000],
                [1, 'z', 60_000],
              ],
          'only unmatched records whose windows are open are held',
        );
      } finally {
        await d.close();
      }
    });
  }
});
