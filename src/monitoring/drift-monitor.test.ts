import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import { createDriftMonitor, type DriftReport } from './drift-monitor.ts';
import { monitorConfigSchema } from './monitor-config.ts';

describe('drift monitor', () => {
  it('does not reopen a reported window for a late record: one report per window, the late record counted', async () => {
    const client = createMemoryClient();
    const admin = client.admin();
    await admin.createTopics([{ topic: 'log', partitions: 1 }]);
    await admin.close();
    const entry = (ts: number) => ({
      topic: 'log',
      key: null,
      value: Buffer.from(JSON.stringify({ model: 'm', version: 1, inputs: { x: [ts % 7] }, outputs: { y: [1] } })),
      timestamp: ts,
    });
    const producer = client.producer();
    // Window [0, 1000): 10 records; a record at 5000 closes it; once reported, one more for [0, 1000): late.
    await producer.send([...Array.from({ length: 10 }, (_, i) => entry(i * 100)), entry(5000)]);
    const config = monitorConfigSchema.parse({ predictionLog: 'log', modelRepository: '/nonexistent', windowMs: 1000, graceMs: 0 });
    const reports: DriftReport[] = [];
    const monitor = createDriftMonitor({ client, config, registry: new Registry(), onReport: (r) => reports.push(r) });
    const abort = new AbortController();
    const running = monitor.run(abort.signal);
    while (reports.length < 1) await delay(5);
    // 6100 closes [5000, 6000); the record at 500 is for the window already reported.
    await producer.send([entry(500), entry(6100)]);
    await producer.close();
    while (monitor.stats().records + monitor.stats().late < 13) await delay(5);
    abort.abort();
    await running;
    await client.close();
    assert.deepEqual(
      reports.map((r) => [r.window.start, r.predictions]),
      [
        [0, 10],
        [5000, 1],
      ],
    );
    assert.equal(monitor.stats().late, 1);
  });

  it('closes windows on the slowest partition: records of a lagging partition count in their window, not as late', async () => {
    const client = createMemoryClient();
    const admin = client.admin();
    await admin.createTopics([{ topic: 'log', partitions: 2 }]);
    await admin.close();
    const entry = (partition: number, ts: number) => ({
      topic: 'log',
      partition,
      key: null,
      value: Buffer.from(JSON.stringify({ model: 'm', version: 1, inputs: { x: [ts % 7] }, outputs: { y: [1] } })),
      timestamp: ts,
    });
    const producer = client.producer();
    const config = monitorConfigSchema.parse({ predictionLog: 'log', modelRepository: '/nonexistent', windowMs: 1000, graceMs: 0 });
    const reports: DriftReport[] = [];
    const monitor = createDriftMonitor({ client, config, registry: new Registry(), onReport: (r) => reports.push(r) });
    const abort = new AbortController();
    const running = monitor.run(abort.signal);
    // Both partitions have a record in [0, 1000); then partition 0 runs ahead to 5000 while partition 1 lags.
    await producer.send([entry(0, 0), entry(1, 50)]);
    while (monitor.stats().records < 2) await delay(5);
    await producer.send([...Array.from({ length: 5 }, (_, i) => entry(0, 100 + i * 100)), entry(0, 5000)]);
    while (monitor.stats().records < 8) await delay(5);
    // Partition 1's records of [0, 1000) arrive after partition 0 passed the window's end.
    await producer.send(Array.from({ length: 4 }, (_, i) => entry(1, 200 + i * 100)));
    while (monitor.stats().records + monitor.stats().late < 12) await delay(5);
    // Partition 1 passes 1000 and then 6000: [0, 1000) closes, then [5000, 6000).
    await producer.send([entry(1, 1500), entry(1, 6100), entry(0, 6200)]);
    await producer.close();
    while (reports.length < 3) await delay(5);
    abort.abort();
    await running;
    await client.close();
    assert.equal(monitor.stats().late, 0, 'no record of the lagging partition is late');
    assert.deepEqual(
      reports.map((r) => [r.window.start, r.predictions]),
      [
        [0, 11],
        [1000, 1],
        [5000, 1],
      ],
    );
  });

  it('catching up, holds every window until each partition with records to read was read: none of them late', async () => {
    const client = createMemoryClient();
    const admin = client.admin();
    await admin.createTopics([{ topic: 'log', partitions: 2 }]);
    await admin.close();
    const entry = (partition: number, ts: number) => ({
      topic: 'log',
      partition,
      key: null,
      value: Buffer.from(JSON.stringify({ model: 'm', version: 1, inputs: { x: [ts % 7] }, outputs: { y: [1] } })),
      timestamp: ts,
    });
    const producer = client.producer();
    // Written before the monitor starts: partition 0 far ahead (a first poll of 1 000 records reads only it), partition 1 behind.
    await producer.send([
      ...Array.from({ length: 1500 }, (_, i) => entry(0, i * 10)),
      ...Array.from({ length: 10 }, (_, i) => entry(1, i * 100)),
      entry(1, 20_000),
    ]);
    await producer.close();
    const config = monitorConfigSchema.parse({ predictionLog: 'log', modelRepository: '/nonexistent', windowMs: 1000, graceMs: 0 });
    const reports: DriftReport[] = [];
    const monitor = createDriftMonitor({ client, config, registry: new Registry(), onReport: (r) => reports.push(r) });
    const abort = new AbortController();
    const running = monitor.run(abort.signal);
    while (monitor.stats().records + monitor.stats().late < 1511) await delay(5);
    // Partition 0 is at 14 990: windows up to [13 000, 14 000) close.
    while (reports.length < 14) await delay(5);
    abort.abort();
    await running;
    await client.close();
    assert.equal(monitor.stats().late, 0, 'no record of partition 1 is late');
    assert.deepEqual(reports[0] && [reports[0].window.start, reports[0].predictions], [0, 110]);
  });
});
