/**
 * One consumer side of bench/kafka/consume-compare.ts: consumes `records` records of `topic` from
 * the earliest offset in a fresh group and prints `consumed <n>` every 200 ms and at the end.
 *
 *   node bench/kafka/consume-child.ts inflow|raw <bootstrap> <topic> <records>
 *
 * inflow: KafkaConsumer.poll({ maxRecords: 500 }) in a loop, as a stream thread polls (buffer 1024).
 * raw:    @platformatic/kafka's MessagesStream with the options inflow's consumer passes, 'data' events.
 */
import { randomUUID } from 'node:crypto';
import { Consumer } from '@platformatic/kafka';
import { createKafkaClient } from '../../src/kafka/index.ts';

const [side, bootstrap = '', topic = '', records = '0'] = process.argv.slice(2);
const N = Number(records);
let got = 0;
const timer = setInterval(() => console.log(`consumed ${got}`), 200);

if (side === 'inflow') {
  const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'consume-child' });
  const consumer = client.consumer({ groupId: `bench-cc-${randomUUID()}`, autoOffsetReset: 'earliest', maxBufferedRecords: 1024 });
  await consumer.subscribe([topic]);
  while (got < N) {
    const batch = await consumer.poll({ maxRecords: 500, timeoutMs: 10_000 });
    if (batch.length === 0) throw new Error(`stalled at ${got}/${N}`);
    got += batch.length;
  }
  console.log(`consumed ${got}`);
  clearInterval(timer);
  await consumer.close();
  await client.close();
} else if (side === 'raw') {
  const consumer = new Consumer({
    clientId: 'consume-child',
    bootstrapBrokers: bootstrap.split(','),
    groupId: `bench-cc-${randomUUID()}`,
    autocommit: false,
    isolationLevel: 0,
    maxWaitTime: 500,
    highWaterMark: 1024,
    ...(process.env.CC_MAX_BYTES ? { maxBytes: Number(process.env.CC_MAX_BYTES) } : {}),
    ...(process.env.CC_PART_BYTES ? { maxBytesPerPartition: Number(process.env.CC_PART_BYTES) } : {}),
  });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
  await new Promise<void>((resolve) => {
    stream.on('data', () => {
      if (++got === N) resolve();
    });
  });
  console.log(`consumed ${got}`);
  clearInterval(timer);
  await stream.close();
  await consumer.close(true);
} else {
  throw new Error(`unknown side ${side}: inflow or raw`);
}
