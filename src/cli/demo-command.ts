/**
 * `inflow demo` — for now the foundation's demo: an exactly-once consume → transform →
 * produce loop (transactions with sendOffsets) over the in-process log, or a real broker with
 * --kafka host:port. The model-serving demo replaces the transform once inference lands.
 */
import { randomUUID } from 'node:crypto';
import { parseBootstrapServers } from '../config/kafka-config.ts';
import { createKafkaClient, createMemoryClient, type KafkaClient } from '../kafka/index.ts';
import { jsonSerde } from '../kafka/serdes.ts';

export const demoHelp = `inflow demo [--records N] [--kafka host:port]

Produces N sensor readings (JSON) to an input topic, runs an exactly-once consume → transform
→ produce loop (one Kafka transaction per batch, offsets committed in it) and checks that the
output holds each input exactly once. Default: the in-process log (no cluster, no Java).

Examples:
  inflow demo
  inflow demo --records 100000
  inflow demo --kafka 127.0.0.1:9092`;

interface Reading {
  sensor: string;
  celsius: number;
}

export async function demoCommand(options: { records: number; kafka?: string }, out: (line: string) => void): Promise<void> {
  const client: KafkaClient = options.kafka
    ? createKafkaClient({ bootstrapServers: parseBootstrapServers(options.kafka), clientId: 'inflow-demo' })
    : createMemoryClient();
  const run = randomUUID().slice(0, 8);
  const input = `demo-readings-${run}`;
  const output = `demo-fahrenheit-${run}`;
  const json = jsonSerde<Reading>();
  try {
    out(`inflow demo on ${client.kind === 'memory' ? 'the in-process log' : `Kafka at ${options.kafka}`}: ${options.records} records`);
    await client.admin().createTopics([
      { topic: input, partitions: 4 },
      { topic: output, partitions: 4 },
    ]);
    const producer = client.producer();
    const started = performance.now();
    for (let i = 0; i < options.records; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, options.records - i) }, (_, j) => {
        const sensor = `sensor-${(i + j) % 16}`;
        return { topic: input, key: Buffer.from(sensor), value: json.serialize({ sensor, celsius: ((i + j) % 400) / 10 }) };
      });
      await producer.send(batch);
    }
    const produced = performance.now();
    out(`  produced ${options.records} readings in ${(produced - started).toFixed(0)} ms`);

    const consumer = client.consumer({ groupId: `demo-${run}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
    await consumer.subscribe([input]);
    const txProducer = client.producer({ transactionalId: `demo-${run}` });
    let done = 0;
    while (done < options.records) {
      const records = await consumer.poll({ maxRecords: 1000, timeoutMs: 5000 });
      if (records.length === 0) throw new Error(`no input for 5 s after ${done} of ${options.records} records`);
      const txn = await txProducer.beginTransaction();
      await txn.send(
        records.map((r) => {
          const reading = json.deserialize(r.value) as Reading;
          return { topic: output, key: r.key, value: json.serialize({ ...reading, fahrenheit: reading.celsius * 1.8 + 32 } as Reading) };
        }),
      );
      const next = new Map<string, { topic: string; partition: number; offset: bigint }>();
      for (const r of records) next.set(`${r.topic}:${r.partition}`, { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
      await txn.sendOffsets(consumer, [...next.values()]);
      await txn.commit();
      done += records.length;
    }
    const processed = performance.now();
    out(
      `  transformed ${done} readings exactly-once in ${(processed - produced).toFixed(0)} ms (${Math.round(done / ((processed - produced) / 1000))} records/s)`,
    );

    const lag = await client.admin().groupLag(`demo-${run}`, [input]);
    const outEnd = await client.admin().listOffsets(output, 'latest');
    out(
      `  consumer lag after commit: ${lag.reduce((a, l) => a + l.lag, 0n)}; output offsets (incl. transaction markers): ${outEnd.map((o) => o.offset).join(', ')}`,
    );
  } finally {
    await client.close();
  }
}
