import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import type { ConsumedRecord, KafkaClient, ProducerRecord } from '../../kafka/types.ts';
import { silentLogger } from '../../observability/logger.ts';
import { MAX_PENDING_BYTES, createTableDeadLetters } from './table-dead-letters.ts';
import { createStreamsMetrics } from './streams-metrics.ts';

/** A client whose producer keeps what it is sent. */
function capturingClient(): { client: KafkaClient; sent: ProducerRecord[] } {
  const sent: ProducerRecord[] = [];
  const producer = {
    send: async (records: ProducerRecord[]) => {
      sent.push(...records);
      return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: BigInt(i) }));
    },
    close: async () => undefined,
  };
  return { client: { producer: () => producer } as unknown as KafkaClient, sent };
}

function badRow(offset: number, valueBytes = 8): ConsumedRecord {
  return {
    topic: 'customers',
    partition: 0,
    offset: BigInt(offset),
    timestamp: 0,
    key: Buffer.from(`c${offset}`),
    value: Buffer.alloc(valueBytes),
    headers: [],
  };
}

const offsets = (sent: readonly ProducerRecord[]): string[] =>
  sent.map((r) => r.headers?.find(([k]) => k === 'inflow.source.offset')?.[1].toString() ?? '?');

describe('global-table dead letters written by one instance', () => {
  const error = new InflowError('INVALID_ARGUMENT', 'field "segment" is number 7; expected a string');
  const create = (client: KafkaClient) =>
    createTableDeadLetters({
      client,
      policy: 'dlq',
      dlqTopic: 'app-dlq',
      maxRecordBytes: 10 * 1024 * 1024,
      metrics: createStreamsMetrics(),
      labels: { pipeline: 'app' },
      log: silentLogger,
      fail: () => assert.fail('no failure expected'),
    });

  it('holds the bad rows it reads until it owns the designated task, then writes them, and writes later ones at once until it loses it', async () => {
    const { client, sent } = capturingClient();
    const dlq = create(client);
    await dlq.onBadRecord(badRow(1), 'customers', error);
    await dlq.onBadRecord(badRow(2), 'customers', error);
    assert.equal(sent.length, 0, 'not the writer: nothing written');
    await dlq.setWriter(true);
    assert.deepEqual(offsets(sent), ['1', '2']);
    assert.ok(sent.every((r) => r.topic === 'app-dlq'));
    await dlq.onBadRecord(badRow(3), 'customers', error);
    assert.deepEqual(offsets(sent), ['1', '2', '3']);
    await dlq.setWriter(false);
    await dlq.onBadRecord(badRow(4), 'customers', error);
    assert.deepEqual(offsets(sent), ['1', '2', '3'], 'no longer the writer');
    await dlq.setWriter(true);
    assert.deepEqual(offsets(sent), ['1', '2', '3', '4'], 'the one read meanwhile is written on becoming the writer again');
    await dlq.close();
  });

  it('holds at most MAX_PENDING_BYTES of bad rows, dropping the oldest', async () => {
    const { client, sent } = capturingClient();
    const dlq = create(client);
    const big = Math.floor(MAX_PENDING_BYTES / 2.5);
    for (let o = 1; o <= 4; o++) await dlq.onBadRecord(badRow(o, big), 'customers', error);
    await dlq.setWriter(true);
    assert.deepEqual(offsets(sent), ['3', '4']);
    await dlq.close();
  });
});
