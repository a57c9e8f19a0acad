/**
 * Every pipeline in examples/pipelines validates and builds (remote clients constructed, never
 * called), and the embedded digits example scores the reference digits with the real ONNX model.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { createRemoteInferencer, type ResilientInferencer } from '../../client/index.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { silentLogger } from '../../observability/logger.ts';
import { setRuntimeLogger } from '../../runtime/index.ts';
import { createLocalInference } from '../../serving/local-inference.ts';
import type { Inferencer } from '../../serving/types.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';
import { createTopologyTestDriver } from '../testing/topology-test-driver.ts';
import { buildPipeline } from './build-pipeline.ts';
import { loadPipelineFile } from './pipeline-config.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const EXAMPLES = join(ROOT, 'examples', 'pipelines');

describe('example pipelines', () => {
  it('every file in examples/pipelines validates and builds; remote clients are constructed but not called', async () => {
    const files = (await readdir(EXAMPLES)).filter((f) => /\.ya?ml$/.test(f)).sort();
    assert.deepEqual(files, [
      'card-payments-avro.yaml',
      'card-payments.yaml',
      'digits-avro.yaml',
      'digits-embedded.yaml',
      'digits-remote.yaml',
    ]);
    for (const file of files) {
      const path = join(EXAMPLES, file);
      const config = await loadPipelineFile(path);
      const remotes: ResilientInferencer[] = [];
      const locals: string[] = [];
      const built = await buildPipeline(config, {
        baseDir: dirname(path),
        source: path,
        // A stand-in for the repository: loading every model of models/repository is another test's job.
        createLocalInference: async (o) => {
          locals.push(o.modelRepository);
          return createTestInferencer();
        },
        createRemoteInferencer: (o) => {
          const remote = createRemoteInferencer(o);
          remotes.push(remote);
          return remote;
        },
      });
      try {
        assert.deepEqual(locals, [join(ROOT, 'models', 'repository')], file);
        assert.ok(built.topology.nodes.size >= 3, file);
        for (const r of remotes) assert.equal(r.stats().calls, 0, `${file}: the remote was called`);
      } finally {
        await built.close();
      }
    }
  });

  it('scores the reference digits with the embedded digits-mlp model and routes records without pixels aside', async () => {
    setRuntimeLogger(silentLogger);
    const samples = JSON.parse(await readFile(join(ROOT, 'models', 'samples', 'digits-mlp.json'), 'utf8')) as {
      inputs: { input: { data: number[] } };
      outputs: { label: { data: number[] }; probabilities: { data: number[] } };
    };
    // A repository with digits-mlp only (the example's holds every model; loading them all is slow). Old
    // timestamps: the repository skips versions whose files changed within its settle time.
    const repo = await mkdtemp(join(tmpdir(), 'inflow-digits-'));
    await cp(join(ROOT, 'models', 'repository', 'digits-mlp'), join(repo, 'digits-mlp'), { recursive: true, preserveTimestamps: true });
    const path = join(EXAMPLES, 'digits-embedded.yaml');
    let local: Inferencer | undefined;
    const built = await buildPipeline(await loadPipelineFile(path), {
      baseDir: dirname(path),
      source: path,
      createLocalInference: async (o) => (local = await createLocalInference({ ...o, modelRepository: repo, watch: false })),
    });
    const driver = await createTopologyTestDriver(built.topology, { applicationId: 'digits-scorer' });
    try {
      assert.ok(local);
      const json = jsonSerde<Record<string, unknown>>();
      const serdes = { key: stringSerde, value: json };
      const pixels = samples.inputs.input.data;
      const rows = pixels.length / 64;
      for (let i = 0; i < rows; i++)
        await driver.pipe('digits', `d-${i}`, { id: `d-${i}`, pixels: pixels.slice(i * 64, i * 64 + 64) }, { serdes });
      await driver.pipe('digits', 'no-pixels', { id: 'no-pixels' }, { serdes });
      await driver.pipe('digits', 'short', { id: 'short', pixels: [1, 2, 3] }, { serdes });
      // maxDelayMs 2 holds partial batches: move the driver's clock until all are out.
      await driver.flush();
      driver.advanceTime(2);
      await driver.flush();
      const scored = await driver.read('digits-scored', serdes);
      assert.deepEqual(
        scored.map((r) => r.value?.label),
        samples.outputs.label.data,
      );
      assert.deepEqual(Object.keys(scored[0]?.value ?? {}), ['id', 'label', 'probabilities']);
      scored.forEach((r, i) => {
        const expected = samples.outputs.probabilities.data.slice(i * 10, i * 10 + 10);
        assert.equal((r.value?.probabilities as number[]).length, 10, `row ${i}: ten probabilities`);
        (r.value?.probabilities as number[]).forEach((p, j) => assert.ok(Math.abs(p - (expected[j] ?? NaN)) < 1e-5, `row ${i} class ${j}`));
      });
      assert.deepEqual(
        (await driver.read('digits-unscorable', serdes)).map((r) => r.value),
        [{ id: 'no-pixels' }],
      );
      const dlq = await driver.deadLetters();
      assert.deepEqual(
        dlq.map((r) => r.key?.toString()),
        ['short'],
      );
    } finally {
      await driver.close();
      await built.close();
      await rm(repo, { recursive: true, force: true });
    }
  });
});
