import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryClient } from '../kafka/index.ts';
import type { ModelMetadata } from '../serving/types.ts';
import { validatePipelineConfig } from '../streams/pipeline/index.ts';
import { loadDigitsDataset } from './digits-dataset.ts';
import { demoPipelineConfig, demoTopics } from './demo-pipelines.ts';
import { digitEvents, replayDataset } from './demo-replay.ts';
import { startScoreboard } from './demo-scoreboard.ts';
import { parseInferRequest, requestFormat } from './request-input.ts';

describe('demo parts', () => {
  it('bundles the 450 held-out digits with labels (the first eight match models/samples)', async () => {
    const d = await loadDigitsDataset();
    assert.equal(d.pixels.length, 450);
    assert.deepEqual(d.labels.slice(0, 8), [2, 0, 4, 9, 4, 1, 2, 4]);
    await assert.rejects(loadDigitsDataset('/no/such/file.json'), { code: 'FAILED_PRECONDITION' });
  });

  it('replays at a steady rate: whatever is due goes out in one batch, never ahead of time', async () => {
    let now = 0;
    const batches: number[] = [];
    const producer = { send: async (records: unknown[]) => void batches.push(records.length) } as never;
    const sentAt = new Float64Array(10);
    const sent = await replayDataset({
      producer,
      topic: 't',
      event: digitEvents([[1, 2]]),
      records: 10,
      rate: 100, // one per 10 ms
      sentAt,
      signal: new AbortController().signal,
      now: () => now,
      sleep: async (ms) => void (now += ms + 25), // every wait oversleeps by 25 ms: the replay catches up
    });
    assert.equal(sent, 10);
    assert.deepEqual(batches, [1, 3, 3, 3]);
    assert.deepEqual([...sentAt], [0, 35, 35, 35, 65, 65, 65, 95, 95, 95]);
    assert.ok(
      [...sentAt].every((t, seq) => t >= seq * 10),
      'no input before its time',
    );
    assert.deepEqual(digitEvents([[1, 2]], 'x')(3), { key: 'x-3', value: '{"id":"x-3","pixels":[1,2]}' });
  });

  it('declares both pipelines with the real pipeline schema', () => {
    const topics = demoTopics('r1');
    const settings = {
      run: 'r1',
      topics,
      modelRepository: '/repo',
      remoteUrl: '127.0.0.1:8500',
      protocol: 'oip-grpc' as const,
      exactlyOnce: true,
    };
    const embedded = validatePipelineConfig(demoPipelineConfig('embedded', settings), 'embedded');
    const remote = validatePipelineConfig(demoPipelineConfig('remote', settings), 'remote');
    assert.equal(embedded.guarantee, 'exactly-once');
    assert.deepEqual(embedded.models.local?.embedded, { modelRepository: '/repo', watch: false, loadModels: 'used' });
    assert.equal(remote.models.server?.remote?.url, '127.0.0.1:8500');
    assert.equal(remote.pipeline.at(-1)?.to?.topic, 'inflow-demo-r1-remote-scored');
  });

  it('scores predictions against the labels, once per input, and counts duplicates apart', async () => {
    const client = createMemoryClient();
    await client.admin().createTopics([{ topic: 'scored', partitions: 1 }]);
    const sentAt = new Float64Array(4).fill(performance.now());
    const board = await startScoreboard({
      client,
      groupId: 'g',
      topics: { embedded: 'scored' },
      labels: [1, 2],
      sentAt,
      readCommitted: false,
    });
    const values = [
      { id: 'd-0', label: 1 },
      { id: 'd-1', label: 9 },
      { id: 'd-2', label: 1 },
      { id: 'd-2', label: 1 },
      { id: 'elsewhere', label: 1 },
      { id: 'd-3', label: 2 },
    ];
    await client.producer().send(values.map((v) => ({ topic: 'scored', key: null, value: Buffer.from(JSON.stringify(v)) })));
    const stop = new AbortController();
    await board.complete(4, stop.signal);
    const s = board.modes.get('embedded');
    assert.deepEqual([s?.scored, s?.correct, s?.duplicates, s?.unreadable], [4, 3, 1, 1]);
    assert.deepEqual(s?.last && [s.last.seq, s.last.predicted, s.last.label], [3, 2, 2]);
    stop.abort(new Error('not reached'));
    await board.close();
    await client.close();
  });

  it('reads requests in OIP, sample and TF Serving formats', async () => {
    const meta = async (): Promise<ModelMetadata> => ({
      name: 'm',
      platform: 'onnx',
      versions: [1],
      labels: {},
      inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }],
      outputs: [],
    });
    const oip = await parseInferRequest(
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}],"outputs":[{"name":"y"}]}',
      { model: 'm' },
      meta,
    );
    assert.deepEqual([oip.inputs.x?.shape, [...(oip.inputs.x?.data as Float32Array)], oip.outputs], [[1, 2], [1, 2], ['y']]);
    const sample = await parseInferRequest(
      '{"inputs":{"x":{"datatype":"FP32","shape":[1,2],"data":[3,4]}}}',
      { model: 'm', version: 2 },
      meta,
    );
    assert.deepEqual([sample.version, [...(sample.inputs.x?.data as Float32Array)]], [2, [3, 4]]);
    const tf = await parseInferRequest('{"instances":[[5,6],[7,8]]}', { model: 'm', label: 'canary' }, meta);
    assert.deepEqual([tf.label, tf.inputs.x?.dtype, tf.inputs.x?.shape], ['canary', 'FP32', [2, 2]]);
    assert.equal(requestFormat({ inputs: { x: [1, 2] } }), 'tfserving');
    assert.throws(() => requestFormat([1]), { code: 'INVALID_ARGUMENT' });
  });
});
