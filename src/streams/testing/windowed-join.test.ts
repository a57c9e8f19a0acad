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
      const keys = (store: string) => [...d.store<unknown[]>(store).all()].map((e) => [e.key[0], (e.key[1] as number) - T0]);
      assert.deepEqual(keys('scored-left').sort(), [
        ['c', 40_000],
        ['d', 29_000],
      ]);
      assert.deepEqual(keys('scored-right').sort(), [
        ['a', 40_000],
        ['c', 21_500],
      ]);
      assert.equal([...d.store('scored-left-time').all()].length, 2);
      assert.equal([...d.store('scored-right-time').all()].length, 2);
    } finally {
      await d.close();
    }
  });
});
