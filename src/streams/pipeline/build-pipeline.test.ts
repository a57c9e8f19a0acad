import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import type { RemoteInferencerOptions } from '../../client/index.ts';
import { InflowError } from '../../errors.ts';
import { jsonSerde, stringSerde, tensorSerde } from '../../kafka/serdes.ts';
import type { LocalInferenceOptions } from '../../serving/local-inference.ts';
import type { Inferencer, ModelMetadata } from '../../serving/types.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';
import { createTopologyTestDriver, type TestRecord } from '../testing/topology-test-driver.ts';
import type { Topology } from '../api/topology.ts';
import { buildPipeline, type PipelineDeps } from './build-pipeline.ts';
import { parsePipelineConfig } from './pipeline-config.ts';

type Value = Record<string, unknown>;
const json = jsonSerde<Value>();
const serdes = { key: stringSerde, value: json };

/** Factories that hand out test inferencers and record what they were asked for and when they closed. */
function fakes(metadata?: (model: string) => Promise<ModelMetadata>) {
  const local: LocalInferenceOptions[] = [];
  const remote: RemoteInferencerOptions[] = [];
  const closed: string[] = [];
  const inferencer = (name: string): Inferencer => {
    const t = createTestInferencer();
    return { ...t, ...(metadata ? { metadata } : {}), close: async () => void closed.push(name) };
  };
  const deps: PipelineDeps = {
    baseDir: '/pipelines',
    source: 'p.yaml',
    createLocalInference: async (o) => (local.push(o), inferencer(`local:${o.modelRepository}`)),
    createRemoteInferencer: (o) => (remote.push(o), inferencer(`remote:${o.url}`)),
  };
  return { deps, local, remote, closed };
}

const YAML_PIPELINE = `
applicationId: scorer
models:
  m: { embedded: { modelRepository: repo } }
pipeline:
  - source: { topic: in, key: string, value: json }
  - filter: { field: kind, in: [a, b] }
  - rename: { fields: { features: x, meta.note: note } }
  - predict:
      name: double
      model: double
      using: m
      inputs: { x: { field: x } }
      outputs: { y: { tensor: y, as: array } }
      maxBatch: 4
  - select: { fields: [id, y, note] }
  - split:
      name: by-size
      branches:
        - name: big
          when: { field: y.0, gte: 10 }
          pipeline: [{ to: { topic: big } }]
        - name: rest
          pipeline: [{ to: { topic: small } }]
`;

/** The same pipeline written with the StreamsBuilder. */
function builderTopology(inferencer: Inferencer): Topology {
  const b = createStreamsBuilder();
  const branches = b
    .stream('in', serdes)
    .filter((r) => ['a', 'b'].includes(r.value?.kind as string))
    .mapValues((r) => {
      const { features, meta, ...rest } = r.value as Value & { meta?: Value };
      const { note, ...metaRest } = meta ?? {};
      return {
        ...rest,
        ...(meta ? { meta: metaRest } : {}),
        ...(features !== undefined ? { x: features } : {}),
        ...(note !== undefined ? { note } : {}),
      };
    })
    .predict(
      { inferencer, model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y', as: 'array' } }, maxBatch: 4 },
      { name: 'double' },
    )
    .mapValues((r) => {
      const v = r.value as Value;
      return Object.fromEntries(['id', 'y', 'note'].filter((k) => v[k] !== undefined).map((k) => [k, v[k]]));
    })
    .split({ big: (r) => ((r.value.y as number[])[0] ?? 0) >= 10 }, { name: 'by-size', defaultBranch: 'rest' });
  branches.big?.to('big', serdes);
  branches.rest?.to('small', serdes);
  return b.build();
}

interface Outputs {
  big: TestRecord<string | null, Value | null>[];
  small: TestRecord<string | null, Value | null>[];
  dlq: { key: string | undefined; stage: string | undefined; node: string | undefined; code: string | undefined }[];
}

async function run(topology: Topology): Promise<Outputs> {
  const driver = await createTopologyTestDriver(topology);
  try {
    const inputs: [string, unknown][] = [
      ['k0', { id: 0, kind: 'a', features: [1, 2], meta: { note: 'n0', keep: true } }],
      ['k1', { id: 1, kind: 'c', features: [1] }],
      ['k2', { id: 2, kind: 'b', features: [6] }],
      ['k3', { id: 3, kind: 'a' }],
      ['k4', { id: 4, kind: 'a', features: [-1] }],
      ['k5', { id: 5, kind: 'b', features: [5, 0] }],
    ];
    for (const [k, v] of inputs) await driver.pipe('in', k, v as Value, { serdes });
    await driver.pipeRaw('in', Buffer.from('k6'), Buffer.from('{oops'));
    await driver.flush();
    const dlq = await driver.deadLetters();
    return {
      big: await driver.read('big', serdes),
      small: await driver.read('small', serdes),
      dlq: dlq.map((r) => ({
        key: r.key?.toString(),
        stage: r.headers[DeadLetterHeader.STAGE],
        node: r.headers[DeadLetterHeader.NODE],
        code: r.headers[DeadLetterHeader.CODE],
      })),
    };
  } finally {
    await driver.close();
  }
}

describe('buildPipeline', () => {
  it('makes a YAML pipeline that produces the same outputs as the builder-made topology', async () => {
    const { deps } = fakes();
    const built = await buildPipeline(parsePipelineConfig(YAML_PIPELINE, 'p.yaml'), deps);
    const fromYaml = await run(built.topology);
    await built.close();
    const fromBuilder = await run(builderTopology(createTestInferencer()));
    const strip = (o: Outputs) => ({
      ...o,
      big: o.big.map((r) => ({ ...r, timestamp: 0 })),
      small: o.small.map((r) => ({ ...r, timestamp: 0 })),
    });
    assert.deepEqual(strip(fromYaml), strip(fromBuilder));
    // And what they produce is what the pipeline says.
    assert.deepEqual(
      fromYaml.big.map((r) => [r.key, r.value]),
      [
        ['k2', { id: 2, y: [12] }],
        ['k5', { id: 5, y: [10, 0] }],
      ],
    );
    assert.deepEqual(
      fromYaml.small.map((r) => [r.key, r.value, r.headers['inflow-model-version']]),
      [['k0', { id: 0, y: [2, 4], note: 'n0' }, '3']],
    );
    assert.deepEqual(fromYaml.dlq, [
      { key: 'k3', stage: 'predict', node: 'double', code: 'INVALID_ARGUMENT' },
      { key: 'k4', stage: 'predict', node: 'double', code: 'INVALID_ARGUMENT' },
      { key: 'k6', stage: 'deserialize', node: 'SOURCE-0000', code: 'SERIALIZATION' },
    ]);
    assert.match(
      built.describe(),
      /^Pipeline scorer \(at-least-once, failed records → scorer-dlq\)\nModel sources\n {2}m {10}embedded \/pipelines\/repo \(watched\)\nTopology\n/,
    );
    assert.match(
      built.describe(),
      /mapValues RENAME-0002\n.*\n {4}predict {3}double \(model: double, maxBatch: 4, maxDelayMs: 0, inferencer: m\)/,
    );
  });

  it('loads only the models the predict steps name through each repository, unless a source says loadModels: all', async () => {
    const text = (load: string) => `
applicationId: app
models:
  a: { embedded: { modelRepository: r1 } }
  b: { embedded: { modelRepository: r1${load} } }
  c: { embedded: { modelRepository: r2 } }
  r: { remote: { protocol: oip-rest, url: "http://h:8501", fallback: c } }
pipeline:
  - source: { topic: in }
  - predict: { model: digits-mlp, using: a, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
  - split:
      branches:
        - name: one
          when: { field: k, equals: 1 }
          pipeline:
            - predict: { model: digits-cnn, using: b, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
            - to: { topic: one }
        - name: other
          pipeline:
            - predict: { model: fraud, using: r, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
            - to: { topic: other }
`;
    const used = fakes();
    await (await buildPipeline(parsePipelineConfig(text(''), 'p.yaml'), used.deps)).close();
    assert.deepEqual(
      used.local.map((o) => [o.modelRepository, o.models]),
      [
        ['/pipelines/r1', ['digits-cnn', 'digits-mlp']],
        // The remote source's fallback serves the model the remote is called for.
        ['/pipelines/r2', ['fraud']],
      ],
    );
    const all = fakes();
    await (await buildPipeline(parsePipelineConfig(text(', loadModels: all'), 'p.yaml'), all.deps)).close();
    assert.deepEqual(
      all.local.map((o) => [o.modelRepository, o.models]),
      [
        ['/pipelines/r1', undefined],
        ['/pipelines/r2', ['fraud']],
      ],
    );
  });

  it('creates one LocalInference per repository, gives a remote source its embedded fallback and closes remote ones first', async () => {
    const config = parsePipelineConfig(
      `
applicationId: app
instanceId: i-1
staticMembership: true
guarantee: exactly-once
errors: { policy: dlq, deadLetterTopic: app-errors }
limits: { maxInFlight: 10, commitIntervalMs: 50 }
state: { dir: ./state, maxStoreBytes: 1048576 }
models:
  a: { embedded: { modelRepository: r1 } }
  b: { embedded: { modelRepository: ./r1/ } }
  c: { embedded: { modelRepository: /abs/r2 } }
  r: { remote: { protocol: oip-rest, url: "http://h:8501", retry: { maxAttempts: 2 }, fallback: a } }
  unused: { embedded: { modelRepository: r3 } }
pipeline:
  - source: { topic: in }
  - predict: { model: double, using: a, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
  - predict: { model: double, using: b, inputs: { x: { field: y } }, outputs: { y: { tensor: y } } }
  - predict: { model: double, using: c, inputs: { x: { field: y } }, outputs: { y: { tensor: y } } }
  - predict: { model: double, using: r, inputs: { x: { field: y } }, outputs: { y: { tensor: y } } }
  - to: { topic: out }
`,
      'p.yaml',
    );
    const { deps, local, remote, closed } = fakes();
    const built = await buildPipeline(config, deps);
    assert.deepEqual(
      local.map((o) => [o.modelRepository, o.watch, typeof o.load]),
      [
        ['/pipelines/r1', true, 'function'],
        ['/abs/r2', true, 'function'],
      ],
    );
    assert.equal(remote.length, 1);
    const { fallback, ...options } = remote[0] as RemoteInferencerOptions;
    assert.equal(fallback, built.inferencers.get('a'));
    assert.deepEqual(
      [options.protocol, options.url, options.retry],
      ['oip-rest', 'http://h:8501', { maxAttempts: 2, initialBackoffMs: 20, maxBackoffMs: 1000, multiplier: 2 }],
    );
    assert.equal(built.inferencers.get('a'), built.inferencers.get('b'));
    assert.deepEqual([...built.inferencers.keys()].sort(), ['a', 'b', 'c', 'r']);
    assert.deepEqual(built.runnerOptions, {
      applicationId: 'app',
      instanceId: 'i-1',
      staticMembership: true,
      guarantee: 'exactly-once',
      onError: 'dlq',
      deadLetterTopic: 'app-errors',
      autoOffsetReset: 'earliest',
      stateDir: '/pipelines/state',
      maxStoreBytes: 1048576,
      maxInFlight: 10,
      commitIntervalMs: 50,
    });
    assert.match(built.describe(), /unused {5}embedded \/pipelines\/r3 \(watched\) \(unused\)/);
    assert.match(built.describe(), /r {10}oip-rest http:\/\/h:8501, 2 attempts, circuit opens after 5 failures, fallback a/);
    await built.close();
    assert.deepEqual(closed, ['remote:http://h:8501', 'local:/pipelines/r1', 'local:/abs/r2']);
  });

  it('hands modelsSync to the model sync with key paths from the pipeline folder, and refuses it without modelsTopic', async () => {
    const text = (embedded: string) => `
applicationId: app
models:
  m: { embedded: { modelRepository: repo, ${embedded} } }
pipeline:
  - source: { topic: in }
  - predict: { model: double, using: m, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
  - to: { topic: out }
`;
    const { deps } = fakes();
    const synced: unknown[] = [];
    const withSync: PipelineDeps = {
      ...deps,
      syncModels: async (root, topic, policy) => {
        synced.push([root, topic, policy]);
        return { attach: () => undefined, close: async () => undefined };
      },
    };
    const config = parsePipelineConfig(text('modelsTopic: inflow-models, modelsSync: { trustedKeys: [keys/release.pub] }'), 'p.yaml');
    const built = await buildPipeline(config, withSync);
    await built.close();
    assert.deepEqual(synced, [
      ['/pipelines/repo', 'inflow-models', { trustedKeys: ['/pipelines/keys/release.pub'], allowExecutablePlatforms: false }],
    ]);
    const orphan = parsePipelineConfig(text('modelsSync: { allowExecutablePlatforms: true }'), 'p.yaml');
    await assert.rejects(buildPipeline(orphan, withSync), {
      code: 'INVALID_CONFIG',
      message: /models\.m\.embedded\.modelsSync: applies to modelsTopic, which is not given/,
    });
  });

  it('fails fast on a model or label the embedded source does not have, and closes what it opened', async () => {
    const text = (predict: string) => `
applicationId: app
models: { a: { embedded: { modelRepository: r1 } } }
pipeline:
  - source: { topic: in }
  - predict: { model: double, using: a, inputs: { x: { field: x } }, outputs: { y: { tensor: y } }${predict} }
  - to: { topic: out }
`;
    const missing = fakes(async (model) => {
      throw new InflowError('NOT_FOUND', `model "${model}" is not loaded`);
    });
    await assert.rejects(buildPipeline(parsePipelineConfig(text(''), 'p.yaml'), missing.deps), {
      code: 'NOT_FOUND',
      message:
        'p.yaml: pipeline.1.predict.model: model "double" is not served by embedded source "a" (/pipelines/r1): model "double" is not loaded',
    });
    assert.deepEqual(missing.closed, ['local:/pipelines/r1']);
    const labels = fakes(async () => ({ name: 'double', platform: 'test', versions: [3], labels: { canary: 3 }, inputs: [], outputs: [] }));
    await assert.rejects(buildPipeline(parsePipelineConfig(text(', label: stable'), 'p.yaml'), labels.deps), {
      code: 'NOT_FOUND',
      message: /pipeline\.1\.predict\.model: model "double": label "stable" is not defined in \/pipelines\/r1; expected one of: canary$/,
    });
    assert.deepEqual(labels.closed, ['local:/pipelines/r1']);
  });

  it('runs tensor values through a predict: one tensor in, one output tensor out', async () => {
    const config = parsePipelineConfig(
      `
applicationId: app
models: { a: { embedded: { modelRepository: r } } }
pipeline:
  - source: { topic: in, value: tensor }
  - predict: { model: double, using: a, inputs: { x: { field: ".", dtype: FP32, shape: [-1] } }, outputTensor: y }
  - to: { topic: out }
`,
      'p.yaml',
    );
    const built = await buildPipeline(config, fakes().deps);
    const driver = await createTopologyTestDriver(built.topology);
    try {
      await driver.pipe('in', null, { dtype: 'FP32', shape: [3], data: new Float32Array([1, 2, 3]) }, { serdes: { value: tensorSerde } });
      await driver.pipe('in', null, { dtype: 'INT32', shape: [1], data: new Int32Array([1]) }, { serdes: { value: tensorSerde } });
      await driver.flush();
      const out = await driver.read('out', { value: tensorSerde });
      assert.deepEqual(
        out.map((r) => [r.value?.dtype, r.value?.shape, Array.from(r.value?.data as Float32Array)]),
        [['FP32', [3], [2, 4, 6]]],
      );
      const dlq = await driver.deadLetters();
      assert.match(dlq[0]?.headers[DeadLetterHeader.MESSAGE] ?? '', /input "x": expected FP32, got INT32 \[1\]/);
    } finally {
      await driver.close();
      await built.close();
    }
  });

  it('builds a dry run with placeholders, checking only that each embedded model has a folder', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inflow-pipeline-'));
    try {
      await mkdir(join(root, 'repo', 'double'), { recursive: true });
      const text = (model: string) => `
applicationId: app
models:
  a: { embedded: { modelRepository: repo } }
  r: { remote: { protocol: tfserving-grpc, url: "h:8500", fallback: a } }
pipeline:
  - source: { topic: in }
  - predict: { model: ${model}, using: r, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
  - to: { topic: out }
`;
      const never = (): never => assert.fail('a dry run creates no inferencer');
      const deps: PipelineDeps = {
        baseDir: root,
        source: 'p.yaml',
        dryRun: true,
        createLocalInference: never,
        createRemoteInferencer: never,
      };
      const built = await buildPipeline(parsePipelineConfig(text('double'), 'p.yaml'), deps);
      await assert.rejects(built.inferencers.get('r')?.infer({ model: 'double', inputs: {} }) ?? Promise.resolve(), {
        code: 'FAILED_PRECONDITION',
      });
      assert.match(built.describe(), /predict {3}PREDICT-0001 \(model: double, .*inferencer: r\)/);
      await built.close();
      await assert.rejects(buildPipeline(parsePipelineConfig(text('triple'), 'p.yaml'), deps), {
        code: 'NOT_FOUND',
        message: `p.yaml: pipeline.1.predict.model: model "triple" has no folder in ${resolve(root, 'repo')} (embedded source "a"); expected ${join(root, 'repo', 'triple')}/`,
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
