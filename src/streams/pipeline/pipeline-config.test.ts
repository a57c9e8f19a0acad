import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { InflowError } from '../../errors.ts';
import { parsePipelineConfig, validatePipelineConfig } from './pipeline-config.ts';

/** The example file. */
const EXAMPLE = `
applicationId: digits-scorer
kafka: { bootstrapServers: [127.0.0.1:9092] }
guarantee: exactly-once
errors: { policy: dlq, deadLetterTopic: digits-dlq }
limits: { maxInFlight: 2048, maxPollRecords: 500, commitIntervalMs: 100 }
models:
  local: { embedded: { modelRepository: models/repository } }
  remote:
    remote: { protocol: oip-grpc, url: 127.0.0.1:8500, timeoutMs: 2000, retry: {maxAttempts: 3}, circuitBreaker: {failureThreshold: 5, resetTimeoutMs: 5000}, fallback: local }
pipeline:
  - source: { topic: digits, key: string, value: json }
  - filter: { field: pixels, exists: true }
  - predict:
      model: digits-mlp
      using: remote
      version: 1
      inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }
      outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
      maxBatch: 64
      maxDelayMs: 2
  - to: { topic: digits-scored, value: json }
`;

type Json = Record<string, unknown> & {
  pipeline: Record<string, Record<string, unknown>>[];
  models: Record<string, Record<string, unknown>>;
};

/** The example as a plain object a test changes. */
function example(): Json {
  return parse(EXAMPLE) as Json;
}

/** Asserts that validation fails with INVALID_CONFIG on one line naming the file and matching `pattern`. */
function rejects(value: unknown, pattern: RegExp): void {
  assert.throws(
    () => validatePipelineConfig(value, 'pipes/p.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof InflowError);
      assert.equal(e.code, 'INVALID_CONFIG');
      assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
      assert.match(e.message, /^invalid configuration in pipes\/p\.yaml: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('pipeline config', () => {
  it('accepts the example file and fills in the defaults', () => {
    const config = parsePipelineConfig(EXAMPLE, 'p.yaml');
    assert.equal(config.guarantee, 'exactly-once');
    assert.equal(config.autoOffsetReset, 'earliest');
    assert.deepEqual(config.errors, { policy: 'dlq', deadLetterTopic: 'digits-dlq' });
    assert.equal(config.models.local?.embedded?.watch, true);
    const remote = config.models.remote?.remote;
    assert.equal(remote?.fallback, 'local');
    assert.deepEqual(remote?.retry, { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 1000, multiplier: 2 });
    assert.equal(config.pipeline.length, 4);
    assert.equal(config.pipeline[2]?.predict?.version, 1);

    const minimal = parsePipelineConfig('applicationId: a\npipeline: [{source: {topic: in}}, {to: {topic: out}}]', 'm.yaml');
    assert.deepEqual(minimal.kafka.bootstrapServers, 'memory');
    assert.deepEqual(minimal.errors, { policy: 'dlq' });
    assert.deepEqual(minimal.models, {});
  });

  it('rejects unknown keys at every depth, naming the field path', () => {
    rejects({ ...example(), bogus: 1 }, /\(root\): unknown key "bogus"/);
    const nested = example();
    (nested.pipeline[2]?.predict?.inputs as Record<string, Record<string, unknown>>).input!.dtpye = 'FP32';
    rejects(nested, /pipeline\.2\.predict\.inputs\.input: unknown key "dtpye"/);
    const op = example();
    op.pipeline[1] = { fitler: { field: 'pixels', exists: true } };
    rejects(op, /pipeline\.1: unknown key "fitler".*pipeline\.1: a step holds exactly one operator .*; got none/);
    const remote = example();
    (remote.models.remote?.remote as Record<string, unknown>).retries = 3;
    rejects(remote, /models\.remote\.remote: unknown key "retries"/);
  });

  it('rejects wrong types and bad values, naming the field path', () => {
    const batch = example();
    batch.pipeline[2]!.predict!.maxBatch = '64';
    rejects(batch, /pipeline\.2\.predict\.maxBatch: .*expected number/);
    const url = example();
    (url.models.remote?.remote as Record<string, unknown>).url = 'http://127.0.0.1:8500';
    rejects(url, /models\.remote\.remote\.url: "http:\/\/127\.0\.0\.1:8500" is not a gRPC address/);
    rejects({ ...example(), kafka: { bootstrapServers: ['localhost'] } }, /kafka\.bootstrapServers\.0: expected "host:port"/);
    const serde = example();
    serde.pipeline[0]!.source!.value = 'avro';
    rejects(serde, /pipeline\.0\.source\.value: expected bytes, string, json, tensor, or \{ format: avro \| protobuf \| json-schema, … \}/);
    const topic = example();
    topic.pipeline[3]!.to!.topic = 'digits scored';
    rejects(topic, /pipeline\.3\.to\.topic: expected 1-249 characters/);
    const filter = example();
    filter.pipeline[1] = { filter: { field: 'pixels' } };
    rejects(filter, /pipeline\.1\.filter: give at least one condition on the field: exists, equals, in/);
    const both = example();
    both.models.local = { embedded: { modelRepository: 'r' }, remote: { protocol: 'oip-grpc', url: 'h:1' } };
    rejects(both, /models\.local: a model source is either `embedded: \{\.\.\.\}` or `remote: \{\.\.\.\}`/);
  });

  it('accepts declarative features (delimited strings, assembled fields, one -1 in a shape) and names what is wrong with them', () => {
    const ok = example();
    ok.pipeline[2]!.predict!.inputs = {
      input: {
        fields: ['a', { field: 'b', delimiter: ';' }, { field: 'c', oneHot: ['x', 'y'] }, { field: 'd', default: 0 }],
        shape: [-1, 8],
      },
    };
    assert.deepEqual((validatePipelineConfig(ok, 'p.yaml').pipeline[2]?.predict?.inputs.input?.fields ?? []).length, 4);
    const delimited = example();
    delimited.pipeline[2]!.predict!.inputs = { input: { field: 'pixels', delimiter: ',' } };
    assert.equal(validatePipelineConfig(delimited, 'p.yaml').pipeline[2]?.predict?.inputs.input?.delimiter, ',');
    const both = example();
    both.pipeline[2]!.predict!.inputs = { input: { field: 'a', fields: ['b'] } };
    rejects(both, /pipeline\.2\.predict\.inputs\.input: give field \(one field\) or fields \(several, in order\), exactly one/);
    const delimiterOnFields = example();
    delimiterOnFields.pipeline[2]!.predict!.inputs = { input: { fields: ['b'], delimiter: ',' } };
    rejects(delimiterOnFields, /pipeline\.2\.predict\.inputs\.input\.delimiter: with fields, give each field its own delimiter/);
    const badPart = example();
    badPart.pipeline[2]!.predict!.inputs = { input: { fields: [{ field: 'b', scale: 2 }] } };
    rejects(badPart, /pipeline\.2\.predict\.inputs\.input\.fields\.0: unknown key "scale"/);
    const twoFree = example();
    twoFree.pipeline[2]!.predict!.inputs = { input: { field: 'pixels', shape: [-1, -1] } };
    rejects(twoFree, /pipeline\.2\.predict\.inputs\.input\.shape: at most one -1/);
  });

  it('rejects a predict whose model source is unknown, or with both a version and a label', () => {
    const using = example();
    using.pipeline[2]!.predict!.using = 'remot';
    rejects(using, /pipeline\.2\.predict\.using: unknown model source "remot"; expected a name under models: \(local, remote\)/);
    const both = example();
    both.pipeline[2]!.predict!.label = 'stable';
    rejects(both, /pipeline\.2\.predict\.label: set a version \(1\) or a label \("stable"\), not both/);
    const outputs = example();
    outputs.pipeline[2]!.predict!.outputTensor = 'label';
    rejects(outputs, /pipeline\.2\.predict: give `outputs` .* or `outputTensor` .*, exactly one/);
  });

  it('rejects a pipeline that does not start with a source or does not end with to', () => {
    const start = example();
    start.pipeline.shift();
    rejects(start, /pipeline\.0: a pipeline starts with a source step; got "filter"/);
    const end = example();
    end.pipeline.pop();
    rejects(end, /pipeline\.2: a pipeline ends with a "to" step \(or a split whose branches do\); got "predict"/);
    const after = example();
    after.pipeline.push({ filter: { field: 'label', equals: 1 } });
    rejects(after, /pipeline\.4: nothing can follow the "to" step at pipeline\.3/);
    const second = example();
    second.pipeline.splice(1, 0, { source: { topic: 'more' } });
    rejects(second, /pipeline\.1: only the first step is a source/);
    const two = example();
    two.pipeline[1] = { filter: { field: 'pixels', exists: true }, select: { fields: ['pixels'] } };
    rejects(two, /pipeline\.1: a step holds exactly one operator .*; got filter and select/);
  });

  it('rejects a fallback that is unknown or not embedded', () => {
    const remote = example();
    (remote.models.remote?.remote as Record<string, unknown>).fallback = 'other';
    remote.models.other = { remote: { protocol: 'oip-rest', url: 'http://h:8501' } };
    rejects(remote, /models\.remote\.remote\.fallback: "other" is not embedded; .* must be an embedded source/);
    const unknown = example();
    (unknown.models.remote?.remote as Record<string, unknown>).fallback = 'nowhere';
    rejects(unknown, /models\.remote\.remote\.fallback: unknown model source "nowhere"/);
  });

  it('checks split branches: the default last, unique names, no source, each ending with to', () => {
    const split = (branches: unknown[]): Json => {
      const c = example();
      c.pipeline.splice(3, 1, { split: { branches } });
      return c;
    };
    const to = (topic: string) => [{ to: { topic } }];
    assert.doesNotThrow(() =>
      validatePipelineConfig(
        split([
          { name: 'sure', when: { field: 'label', in: [1, 7] }, pipeline: to('a') },
          { name: 'rest', pipeline: to('b') },
        ]),
        'p.yaml',
      ),
    );
    rejects(
      split([
        { name: 'rest', pipeline: to('b') },
        { name: 'sure', when: { field: 'label', gte: 1 }, pipeline: to('a') },
      ]),
      /pipeline\.3\.split\.branches\.0\.when: only the last branch may omit `when`/,
    );
    rejects(
      split([
        { name: 'x', when: { field: 'label', equals: 1 }, pipeline: to('a') },
        { name: 'x', pipeline: to('b') },
      ]),
      /pipeline\.3\.split\.branches\.1\.name: branch "x" is named twice/,
    );
    rejects(
      split([{ name: 'x', pipeline: [{ source: { topic: 'c' } }, ...to('a')] }]),
      /pipeline\.3\.split\.branches\.0\.pipeline\.0: a split branch reads its records from the split/,
    );
    rejects(
      split([{ name: 'x', pipeline: [{ select: { fields: ['label'] } }] }]),
      /pipeline\.3\.split\.branches\.0\.pipeline\.0: a pipeline ends with a "to" step/,
    );
    rejects(split([{ name: '1', pipeline: to('a') }]), /pipeline\.3\.split\.branches\.0\.name: expected a letter/);
  });

  it('follows the value kind from the source serde to each to, and rejects operators that cannot read it', () => {
    const tensorOut = example();
    tensorOut.pipeline[3]!.to!.value = 'tensor';
    rejects(tensorOut, /pipeline\.3\.to\.value: the values that reach this step are json; the tensor serde cannot write them/);
    const bytes = example();
    bytes.pipeline[0]!.source!.value = 'bytes';
    rejects(
      bytes,
      /pipeline\.1\.filter: filter reads fields of JSON values; the values here are bytes.*pipeline\.2\.predict: predict reads json/,
    );
    const tensorIn = example();
    tensorIn.pipeline[0]!.source!.value = 'tensor';
    tensorIn.pipeline.splice(1, 1);
    rejects(
      tensorIn,
      /pipeline\.1\.predict\.inputs: the values here are tensors \(tensor serde\): map exactly one model input, with field "\."/,
    );
    const fp16 = example();
    (fp16.pipeline[2]!.predict!.inputs as Record<string, Record<string, unknown>>).input!.dtype = 'FP16';
    rejects(fp16, /pipeline\.2\.predict\.inputs\.input\.dtype: FP16 cannot be filled from JSON numbers/);
    const key = example();
    key.pipeline[3]!.to!.key = 'bytes';
    rejects(key, /pipeline\.3\.to\.key: the keys that reach this step are string; the bytes serde cannot write them/);
  });

  it('rejects writing to an input topic, a misplaced dead-letter topic and reused node names', () => {
    const loop = example();
    loop.pipeline[3]!.to!.topic = 'digits';
    rejects(loop, /pipeline\.3\.to\.topic: "digits" is an input topic of this pipeline/);
    rejects(
      { ...example(), errors: { policy: 'skip', deadLetterTopic: 'x' } },
      /errors\.deadLetterTopic: applies to policy dlq only; the policy is skip/,
    );
    rejects({ ...example(), errors: { deadLetterTopic: 'digits' } }, /errors\.deadLetterTopic: "digits" is an input topic/);
    const names = example();
    names.pipeline[1]!.filter!.name = 'n';
    names.pipeline[2]!.predict!.name = 'n';
    rejects(names, /pipeline\.2\.predict\.name: node name "n" is already used at pipeline\.1\.filter/);
  });

  it('accepts Schema Registry formats per topic with the registry configured once, and names what is missing', () => {
    const avro = { format: 'avro', schema: '{"type":"record","name":"S","fields":[{"name":"label","type":"long"}]}' };
    const ok = example();
    ok.schemaRegistry = { url: 'https://registry:8081', basicAuth: { username: 'key', passwordFile: '/run/secrets/sr' } };
    ok.pipeline[0]!.source!.value = { format: 'protobuf' };
    ok.pipeline[3]!.to!.value = avro;
    const config = validatePipelineConfig(ok, 'p.yaml');
    assert.deepEqual(config.pipeline[3]?.to?.value, avro);

    const noRegistry = example();
    noRegistry.pipeline[0]!.source!.value = { format: 'avro' };
    rejects(noRegistry, /pipeline\.0\.source\.value\.format: the avro format needs a schemaRegistry: section/);
    const noSchema = structuredClone(ok);
    noSchema.pipeline[3]!.to!.value = { format: 'avro' };
    rejects(
      noSchema,
      /pipeline\.3\.to\.value: writing avro needs exactly one output schema: schema, schemaFile, useLatest: true or schemaId; got none/,
    );
    const two = structuredClone(ok);
    two.pipeline[3]!.to!.value = { ...avro, schemaId: 3 };
    rejects(two, /got schema and schemaId/);
    const key = structuredClone(ok);
    key.pipeline[0]!.source!.key = { format: 'avro' };
    rejects(key, /pipeline\.3\.to\.key: the source's keys are avro: give this topic's key serde/);
    rejects({ ...ok, schemaRegistry: { url: 'ftp://x' } }, /schemaRegistry\.url: expected an http:\/\/ or https:\/\/ URL/);
    rejects(
      { ...ok, schemaRegistry: { url: 'http://x', bearerToken: 't', basicAuth: { username: 'u', password: 'p' } } },
      /schemaRegistry\.bearerToken: set basicAuth or a bearer token, not both/,
    );
  });

  it('reports YAML syntax errors with the file, line and column', () => {
    assert.throws(() => parsePipelineConfig('applicationId: a\npipeline: [\n', 'bad.yaml'), {
      code: 'INVALID_CONFIG',
      message: /^cannot parse bad\.yaml:\d+:\d+: /,
    });
  });
});
