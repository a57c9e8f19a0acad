import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonFloat32Array } from '../../kafka/json-numeric.ts';
import { stringSerde } from '../../kafka/serdes.ts';
import type { InferRequest } from '../../serving/types.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { dataFits } from '../../tensor/tensor.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';
import { createTopologyTestDriver } from '../testing/topology-test-driver.ts';
import { numericInputFields } from './numeric-fields.ts';
import { parsePipelineConfig } from './pipeline-config.ts';
import { buildTopology } from './pipeline-topology.ts';

const steps = (yaml: string) =>
  parsePipelineConfig(`applicationId: a\nmodels: { m: { embedded: { modelRepository: r } } }\npipeline:\n${yaml}`, 'p.yaml').pipeline;

describe('numeric input fields of a pipeline', () => {
  it('lists the top-level FP32/FP64 fields its predict steps read, branches included', () => {
    const fields = numericInputFields(
      steps(`  - source: { topic: in }
  - filter: { field: kind, equals: a }
  - predict: { model: x, using: m, inputs: { a: { field: pixels }, b: { field: meta.v }, c: { field: csv, delimiter: "," }, d: { field: ids, dtype: INT64 } }, outputs: { y: { tensor: y } } }
  - split:
      branches:
        - name: one
          when: { field: y, gt: 0 }
          pipeline:
            - predict: { model: y, using: m, inputs: { a: { field: pixels, dtype: FP64 }, b: { field: other, dtype: FP32 } }, outputs: { z: { tensor: z } } }
            - to: { topic: o1 }
        - name: two
          pipeline: [{ to: { topic: o2 } }]
`),
    );
    assert.deepEqual(Object.fromEntries(fields), { pixels: 'FP64', other: 'FP32' });
  });

  it('lists none when a step keeps values in a store (an aggregate)', () => {
    const fields = numericInputFields(
      steps(`  - source: { topic: in, key: string }
  - aggregate: { groupBy: card, window: { tumbling: 10s }, aggregations: { n: count } }
  - predict: { model: x, using: m, inputs: { a: { field: pixels } }, outputs: { y: { tensor: y } } }
  - to: { topic: out }
`),
    );
    assert.equal(fields.size, 0);
  });

  it('feeds the model the same FP32 data and writes the same JSON as the plain JSON path, and dead-letters bad records the same way', async () => {
    const inferencer = createTestInferencer();
    const seen: unknown[] = [];
    const infer = inferencer.infer.bind(inferencer);
    inferencer.infer = async (r: InferRequest) => {
      seen.push(r.inputs.x?.data);
      return await infer(r);
    };
    const config = parsePipelineConfig(
      `applicationId: a
models: { m: { embedded: { modelRepository: r } } }
pipeline:
  - source: { topic: in, key: string, value: json }
  - predict: { model: double, using: m, inputs: { x: { field: pixels } }, outputs: { y: { tensor: y, as: array } }, maxBatch: 1 }
  - to: { topic: out, value: json }
`,
      'p.yaml',
    );
    const topology = buildTopology(config, new Map([['m', inferencer]]), 'p.yaml');
    const driver = await createTopologyTestDriver(topology);
    try {
      const texts = ['{"id":1,"pixels":[0.1, 2.50, 1e-3]}', '{"id":2,"pixels":[[1]]}', '{"id":3,"pixels":[1,"x"]}', '{"id":4,"pixels":[1,'];
      for (const [i, t] of texts.entries()) await driver.pipeRaw('in', Buffer.from(`k${i}`), Buffer.from(t));
      await driver.flush();
      const out = await driver.read('out', {
        key: stringSerde,
        value: { name: 'raw', serialize: (v: Buffer) => v, deserialize: (b) => b },
      });
      // The first record went the typed-array way: its input data is the decoded array's memory,
      // as a plain Float32Array (what tensors hold: onnxruntime maps types by constructor).
      assert.ok(seen[0] instanceof Float32Array && !(seen[0] instanceof JsonFloat32Array));
      assert.ok(dataFits('FP32', seen[0]));
      assert.deepEqual(Array.from(seen[0]), Array.from(Float32Array.of(0.1, 2.5, 1e-3)));
      const first = JSON.parse(out[0]?.value?.toString() ?? '') as { pixels: number[]; y: number[] };
      assert.equal(out[0]?.value?.toString(), JSON.stringify({ id: 1, pixels: [0.1, 2.5, 0.001], y: first.y }));
      // [[1]] is a valid nested input (plain path); the others are dead letters as before.
      assert.deepEqual(
        out.map((r) => r.key),
        ['k0', 'k1'],
      );
      assert.deepEqual(
        (await driver.deadLetters()).map((r) => [r.key?.toString(), r.headers[DeadLetterHeader.CODE]]),
        [
          ['k2', 'INVALID_ARGUMENT'],
          ['k3', 'SERIALIZATION'],
        ],
      );
    } finally {
      await driver.close();
    }
  });
});
