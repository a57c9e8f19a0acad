import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { createStreamsBuilder } from './streams-builder.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';

describe('streams builder', () => {
  it('builds a frozen topology that describe() prints node by node', () => {
    const b = createStreamsBuilder();
    const scored = b
      .stream('readings', { key: stringSerde, value: jsonSerde<{ x: number[] }>() }, { name: 'readings-in' })
      .filter((r) => r.value !== null, { name: 'non-null' })
      .predict(
        {
          inferencer: createTestInferencer(),
          model: 'double',
          inputs: { x: { field: 'x' } },
          outputs: { y: { tensor: 'y' } },
          maxBatch: 32,
        },
        { name: 'score' },
      );
    const { big, rest } = scored.split(
      { big: (r) => ((r.value as { y: number[] }).y[0] ?? 0) > 10 },
      { name: 'by-size', defaultBranch: 'rest' },
    );
    big?.to('big', { value: jsonSerde() });
    rest?.to('small', { value: jsonSerde() });
    const t = b.build();
    assert.deepEqual(t.inputTopics, ['readings']);
    assert.deepEqual(t.outputTopics, ['big', 'small']);
    assert.ok(Object.isFrozen(t) && Object.isFrozen(t.inputTopics));
    const text = t.describe();
    assert.match(text, /source\s+readings-in \(topics: \[readings\]\)\n\s+--> non-null/);
    assert.match(text, /predict\s+score \(model: double, maxBatch: 32, maxDelayMs: 0, inferencer: inferencer\)/);
    assert.match(text, /split\s+by-size \(branches: \[big, rest \(default\)\]\)\n\s+--> by-size-big, by-size-rest/);
    assert.match(text, /sink\s+SINK-\d+ \(topic: big\)/);
  });

  it('declares sub-topologies, stores and their changelog topics, and describe() prints them', () => {
    const b = createStreamsBuilder();
    b.stream('clicks', {}, { name: 'clicks-in' })
      .peek(() => undefined, { name: 'count-clicks' })
      .to('clicks-out');
    b.stream('views', {}, { name: 'views-in' })
      .peek(() => undefined, { name: 'count-views' })
      .to('views-out');
    b.stream(['orders', 'payments'], {}, { name: 'orders-in' }).to('orders-out');
    // One store used from two streams joins them into one sub-topology (their inputs are co-partitioned).
    b.addStateStore({ name: 'per-user' }, 'count-clicks', 'count-views');
    b.addStateStore({ name: 'scratch', changelog: false }, 'orders-in');
    const t = b.build();
    assert.deepEqual(
      t.subtopologies.map((s) => ({ id: s.id, inputTopics: s.inputTopics, stores: s.stores })),
      [
        { id: 0, inputTopics: ['clicks', 'views'], stores: ['per-user'] },
        { id: 1, inputTopics: ['orders', 'payments'], stores: ['scratch'] },
      ],
    );
    assert.deepEqual(t.internalTopics('app'), [{ name: 'app-per-user-changelog', kind: 'changelog', subtopology: 0, compacted: true }]);
    const text = t.describe();
    assert.match(text, /Sub-topology: 0 \(tasks 0_<partition> over \[clicks, views\]\)/);
    assert.match(text, /store {5}per-user \(key-value, used by: \[count-clicks, count-views\]\)/);
    assert.match(text, /Internal topics:\n {4}changelog {1}<applicationId>-per-user-changelog \(sub-topology 0, compacted\)/);
    assert.throws(() => createStreamsBuilder().addStateStore({ name: 'a b' }), { code: 'INVALID_CONFIG' });
    const dangling = createStreamsBuilder();
    dangling.stream('in').to('out');
    dangling.addStateStore({ name: 's' }, 'no-such-node');
    assert.throws(() => dangling.build(), { code: 'INVALID_CONFIG', message: /unknown nodes: no-such-node/ });
  });

  it('rejects duplicate node names, topics read twice, dead ends and use after build()', () => {
    const b = createStreamsBuilder();
    const s = b.stream('a', {}, { name: 'x' });
    assert.throws(() => s.filter(() => true, { name: 'x' }), { code: 'INVALID_CONFIG', message: /node name "x" is used twice/ });
    assert.throws(() => b.stream('a'), { code: 'INVALID_CONFIG', message: /topic "a" is already read/ });
    s.mapValues((r) => r.value, { name: 'dangling' });
    assert.throws(() => b.build(), { code: 'INVALID_CONFIG', message: /node "dangling" \(mapValues\) leads nowhere/ });
    const ok = createStreamsBuilder();
    ok.stream('a').to('b');
    ok.build();
    assert.throws(() => ok.stream('c'), { code: 'FAILED_PRECONDITION' });
    assert.throws(() => ok.build(), { code: 'FAILED_PRECONDITION' });
  });

  it('validates predict options when the node is added', () => {
    const s = createStreamsBuilder().stream('a');
    const base = { inferencer: createTestInferencer(), model: 'm', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } } };
    assert.throws(() => s.predict({ ...base, version: 1, label: 'stable' }), {
      code: 'INVALID_CONFIG',
      message: /a version or a label, not both/,
    });
    assert.throws(() => s.predict({ ...base, maxBatch: 0 }), { code: 'INVALID_CONFIG', message: /maxBatch must be an integer ≥ 1, got 0/ });
    assert.throws(() => s.predict({ ...base, inputs: {} }), { code: 'INVALID_CONFIG', message: /map at least one model input/ });
    assert.throws(() => s.predict({ ...base, inputs: { x: { field: 'x', dtype: 'FP16' } } }), { code: 'INVALID_CONFIG', message: /FP16/ });
  });
});
