import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createTestInferencer } from './test-inferencer.fixture.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

const json = jsonSerde<Record<string, unknown>>();
const serdes = { key: stringSerde, value: json };

function doublingTopology(inferencer = createTestInferencer(), predict: Record<string, unknown> = {}) {
  const b = createStreamsBuilder();
  b.stream('in', serdes)
    .filter((r) => r.value !== null)
    .predict(
      { inferencer, model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } }, ...predict },
      { name: 'predict-double' },
    )
    .to('out', serdes);
  return { topology: b.build(), inferencer };
}

describe('topology test driver', () => {
  it('predicts every record and writes the model and version headers', async () => {
    const { topology } = doublingTopology();
    const driver = await createTopologyTestDriver(topology);
    try {
      for (let i = 0; i < 5; i++) await driver.pipe('in', `k${i}`, { id: i, x: [i, 1] }, { serdes });
      await driver.flush();
      const out = await driver.read('out', serdes);
      assert.deepEqual(
        out.map((r) => r.value),
        [0, 1, 2, 3, 4].map((i) => ({ id: i, x: [i, 1], y: [2 * i, 2] })),
      );
      assert.equal(out[0]?.headers['inflow-model'], 'double');
      assert.equal(out[0]?.headers['inflow-model-version'], '3');
    } finally {
      await driver.close();
    }
  });

  it('sends undecodable, malformed and model-rejected records to the dead-letter topic while good ones flow', async () => {
    const { topology } = doublingTopology();
    const driver = await createTopologyTestDriver(topology);
    try {
      await driver.pipe('in', 'a', { x: [1] }, { serdes });
      await driver.pipeRaw('in', Buffer.from('b'), Buffer.from('{not json'));
      await driver.pipe('in', 'c', { nox: 1 }, { serdes });
      await driver.pipe('in', 'd', { x: [-1] }, { serdes });
      await driver.pipe('in', 'e', { x: [2] }, { serdes });
      await driver.flush();
      const out = await driver.read('out', serdes);
      assert.deepEqual(
        out.map((r) => r.key),
        ['a', 'e'],
      );
      const dlq = await driver.deadLetters();
      assert.deepEqual(
        dlq.map((r) => r.key?.toString()),
        ['b', 'c', 'd'],
      );
      assert.deepEqual(
        dlq.map((r) => r.headers[DeadLetterHeader.STAGE]),
        ['deserialize', 'predict', 'predict'],
      );
      assert.deepEqual(
        dlq.map((r) => r.headers[DeadLetterHeader.CODE]),
        ['SERIALIZATION', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'],
      );
      assert.match(dlq[1]?.headers[DeadLetterHeader.MESSAGE] ?? '', /field "x" is missing/);
      assert.equal(dlq[0]?.value?.toString(), '{not json');
      assert.equal(dlq[2]?.headers[DeadLetterHeader.OFFSET], '3');
      assert.equal(dlq[2]?.headers[DeadLetterHeader.TOPIC], 'in');
    } finally {
      await driver.close();
    }
  });

  it("dead-letters a record nested 100 000 lists deep as the caller's mistake (INVALID_ARGUMENT), not INTERNAL", async () => {
    const { topology } = doublingTopology();
    const driver = await createTopologyTestDriver(topology);
    try {
      const depth = 100_000;
      await driver.pipeRaw('in', Buffer.from('deep'), Buffer.from(`{"x": ${'['.repeat(depth)}1${']'.repeat(depth)}}`));
      await driver.pipe('in', 'ok', { x: [2] }, { serdes });
      await driver.flush();
      assert.deepEqual(
        (await driver.read('out', serdes)).map((r) => r.key),
        ['ok'],
      );
      const [dead] = await driver.deadLetters();
      assert.equal(dead?.key?.toString(), 'deep');
      assert.equal(dead?.headers[DeadLetterHeader.CODE], 'INVALID_ARGUMENT');
      assert.equal(dead?.headers[DeadLetterHeader.STAGE], 'predict');
      assert.match(dead?.headers[DeadLetterHeader.MESSAGE] ?? '', /field "x" has lists nested more than 254 deep/);
    } finally {
      await driver.close();
    }
  });

  it('dead-letters a record whose output is larger than the broker takes, and keeps going', async () => {
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .mapValues((r) => ({ ...(r.value as Record<string, unknown>), pad: 'x'.repeat((r.value as { pad: number }).pad) }))
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build());
    try {
      await driver.pipe('in', 'small', { pad: 10 }, { serdes });
      await driver.pipe('in', 'huge', { pad: 2_000_000 }, { serdes });
      await driver.pipe('in', 'after', { pad: 10 }, { serdes });
      await driver.flush();
      assert.deepEqual(
        (await driver.read('out', serdes)).map((r) => r.key),
        ['small', 'after'],
      );
      const [dead, ...more] = await driver.deadLetters();
      assert.equal(more.length, 0);
      assert.equal(dead?.key?.toString(), 'huge');
      assert.equal(dead?.headers[DeadLetterHeader.CODE], 'KAFKA_RECORD_TOO_LARGE');
      assert.equal(dead?.headers[DeadLetterHeader.STAGE], 'serialize');
      assert.match(dead?.headers[DeadLetterHeader.MESSAGE] ?? '', /output for topic "out" is 2000\d+ bytes .* over the limit of 1000000/);
    } finally {
      await driver.close();
    }
  });

  it('writes a prediction log entry per prediction with model, version, outputs and latency', async () => {
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .predict({
        inferencer: createTestInferencer(),
        model: 'double',
        inputs: { x: { field: 'x' } },
        outputs: { y: { tensor: 'y' } },
        predictionLog: { topic: 'predictions', includeInputs: true },
      })
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build());
    try {
      await driver.pipe('in', 'a', { x: [1, 2] }, { serdes, headers: { 'inflow-request-id': 'req-1' } });
      await driver.pipe('in', 'b', { x: [3, 4] }, { serdes });
      await driver.flush();
      const log = await driver.read('predictions', { value: json });
      assert.equal(log.length, 2);
      const [first, second] = log.map((r) => r.value as Record<string, unknown>);
      assert.equal(first?.requestId, 'req-1');
      assert.equal(second?.requestId, 'in/0@1');
      assert.equal(first?.key, 'a');
      assert.equal(first?.model, 'double');
      assert.equal(first?.version, 3);
      assert.deepEqual(first?.outputs, { y: [2, 4] });
      assert.deepEqual(first?.inputs, { x: [1, 2] });
      assert.equal(typeof first?.latencyMs, 'number');
      assert.deepEqual(first?.source, { topic: 'in', partition: 0, offset: '0' });
    } finally {
      await driver.close();
    }
  });
});
