import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parsePipelineConfig } from '../streams/pipeline/index.ts';
import { demoCommand } from './demo-command.ts';
import { renameExample } from './demo-stateful.ts';

const PIPELINES = join(import.meta.dirname, '..', '..', 'examples', 'pipelines');

describe('inflow demo --scene card-payments', () => {
  it('renames every topic, the dead-letter topic and the application id of both example files for the run, and the registry URL', async () => {
    for (const [file, avro] of [
      ['card-payments.yaml', false],
      ['card-payments-avro.yaml', true],
    ] as const) {
      const { text, topics } = renameExample(
        await readFile(join(PIPELINES, file), 'utf8'),
        avro,
        'r1',
        'http://registry:1/apis/ccompat/v7',
      );
      const config = parsePipelineConfig(text, file);
      assert.match(config.applicationId, /-r1$/);
      assert.equal(config.errors.deadLetterTopic, topics.dlq);
      const named = [
        ...Object.values(config.tables).map((t) => t.topic),
        ...config.pipeline.flatMap((s) => [s.source?.topic, s.to?.topic].flat().filter((t) => t !== undefined)),
      ];
      assert.deepEqual(named.sort(), [topics.merchants, topics.payments, topics.scored].sort());
      for (const t of named) assert.match(t, /^inflow-demo-r1-/);
      if (avro) assert.equal(config.schemaRegistry?.url, 'http://registry:1/apis/ccompat/v7');
    }
  });

  it('runs the example on the in-process log: every payment scored once, features equal to the pandas reference', async () => {
    const lines: string[] = [];
    await demoCommand({ scene: 'card-payments', rate: '0', json: true }, (line) => lines.push(line));
    const summary = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>;
    assert.equal(summary.scored, summary.payments);
    assert.equal(summary.payments, 1501);
    assert.deepEqual(summary.problems, []);
    assert.equal(summary.featuresEqualReference, true);
    assert.ok((summary.accuracy as number) > 0.95, `accuracy ${String(summary.accuracy)}`);
  });

  it('refuses an unknown scene and --avro without a registry, saying what is expected', async () => {
    await assert.rejects(
      demoCommand({ scene: 'nope' }, () => undefined),
      { code: 'INVALID_ARGUMENT', message: /--scene must be one of card-payments/ },
    );
    const saved = process.env.SCHEMA_REGISTRY_URL;
    delete process.env.SCHEMA_REGISTRY_URL;
    try {
      await assert.rejects(
        demoCommand({ scene: 'card-payments', avro: true }, () => undefined),
        {
          code: 'INVALID_ARGUMENT',
          message: /--avro needs a Schema Registry: set SCHEMA_REGISTRY_URL/,
        },
      );
    } finally {
      if (saved !== undefined) process.env.SCHEMA_REGISTRY_URL = saved;
    }
  });
});
