/**
 * Declarative features on the real broker (issue 17 item 3), as a new user writes them in a
 * pipeline file, with no JavaScript: a comma-delimited string of 49 152 numbers fed to the
 * MobileNet-style CNN, whose input is declared [-1, 3, 128, 128] (the pipeline file gives no
 * shape: the build fits the row to the model's signature); the digits model fed one input
 * assembled from a list field and a ';'-delimited string field in a declared order. Outputs equal
 * Python onnxruntime's (models/samples) and the digits reference; a string with a non-number goes
 * to the dead-letter topic naming the element.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { DeadLetterHeader } from '../../src/streams/runtime/dead-letter.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  assertMatchesReference,
  createTopics,
  type DigitsOutput,
  digitsReference,
  json,
  keyOf,
  MODELS,
  modelRepository,
  produceRaw,
  readToEnd,
  uniqueName,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const DIGITS = 40;

interface Sample {
  inputs: { input: { shape: number[]; data: number[] } };
  outputs: { probabilities: { shape: number[]; data: number[] } };
}

describe('declarative features in a pipeline file on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-features' });
  });
  after(async () => {
    await client?.close();
  });

  it('scores delimited strings with a [-1, 3, 128, 128] model and assembled fields with the digits model, like Python, dead-lettering a bad number', async () => {
    const ref = await digitsReference();
    const cnn = JSON.parse(await readFile(join(MODELS, 'samples', 'cnn-mobilenet.json'), 'utf8')) as Sample;
    const width = 3 * 128 * 128;
    const classes = cnn.outputs.probabilities.shape[1] as number;
    const images = cnn.inputs.input.shape[0] as number;
    const input = uniqueName('features-in');
    const output = uniqueName('features-out');
    const applicationId = uniqueName('features-app');
    await createTopics(client, [input, output, `${applicationId}-dlq`], 4);
    const records = [];
    for (let i = 0; i < images; i++) {
      const pixels = cnn.inputs.input.data.slice(i * width, (i + 1) * width).join(',');
      records.push({ topic: input, key: Buffer.from(`img-${i}`), value: json.serialize({ kind: 'image', id: i, pixels }) });
    }
    for (let id = 0; id < DIGITS; id++) {
      const p = ref.pixelsOf(id);
      const value = { kind: 'digit', id, top: p.slice(0, 32), bottom: p.slice(32).join(';') };
      records.push({ topic: input, key: Buffer.from(keyOf(id)), value: json.serialize(value) });
    }
    const bad = { kind: 'image', id: 99, pixels: `0.5,0.25,oops${',0'.repeat(width - 3)}` };
    records.push({ topic: input, key: Buffer.from('bad'), value: json.serialize(bad) });
    await produceRaw(client, records);

    const repository = await modelRepository(['cnn-mobilenet', 'digits-mlp']);
    const yaml = `
applicationId: ${applicationId}
models:
  local: { embedded: { modelRepository: ${repository}, watch: false } }
pipeline:
  - source: { topic: ${input}, key: string, value: json }
  - split:
      branches:
        - name: images
          when: { field: kind, equals: image }
          pipeline:
            - predict:
                model: cnn-mobilenet
                using: local
                inputs: { input: { field: pixels, delimiter: "," } }
                outputs: { probabilities: { tensor: probabilities } }
            - select: { fields: [kind, id, probabilities] }
            - to: { topic: ${output} }
        - name: digits
          pipeline:
            - predict:
                model: digits-mlp
                using: local
                inputs: { input: { fields: [top, { field: bottom, delimiter: ";" }] } }
                outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
            - select: { fields: [kind, id, label, probabilities] }
            - to: { topic: ${output} }
`;
    const built = await buildPipeline(parsePipelineConfig(yaml, 'features.yaml'));
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
    await runner.start();
    try {
      await waitForLagZero(client, applicationId, input);
    } finally {
      await runner.close();
      await built.close();
    }

    const out = (await readToEnd(client, output)).map((r) => json.deserialize(r.value) as Record<string, unknown>);
    const imagesOut = out.filter((v) => v.kind === 'image');
    const digitsOut = out.filter((v) => v.kind === 'digit');
    assert.equal(imagesOut.length, images, 'every image scored once');
    for (const v of imagesOut) {
      const id = v.id as number;
      const want = cnn.outputs.probabilities.data.slice(id * classes, (id + 1) * classes);
      const got = v.probabilities as number[];
      assert.equal(got.length, classes);
      for (const [c, w] of want.entries())
        assert.ok(Math.abs((got[c] as number) - w) <= 1e-4, `image ${id}: probabilities[${c}] = ${got[c]}, Python ${w}`);
    }
    assert.equal(digitsOut.length, DIGITS, 'every digit scored once');
    for (const v of digitsOut) assertMatchesReference(v as unknown as DigitsOutput, ref);

    const dead = await readToEnd(client, `${applicationId}-dlq`);
    assert.equal(dead.length, 1, 'the bad string is the only dead letter');
    const header = (name: string) => dead[0]?.headers.find(([k]) => k === name)?.[1].toString();
    assert.equal(dead[0]?.key?.toString(), 'bad');
    assert.equal(header(DeadLetterHeader.CODE), 'INVALID_ARGUMENT');
    assert.match(header(DeadLetterHeader.MESSAGE) ?? '', /element 2 of the ","-delimited string is "oops"; expected a number/);
  });
});
