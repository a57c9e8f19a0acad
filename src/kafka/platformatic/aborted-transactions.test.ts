import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';
import { dropAbortedRecords, type FetchedBatch } from './aborted-transactions.ts';

/** A control record key: version 0, type (0 = ABORT, 1 = COMMIT). */
function marker(type: 0 | 1): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(type, 2);
  return key;
}

interface Batch extends FetchedBatch {
  readonly label: string;
}

function data(label: string, firstOffset: number, producerId: number, count = 1, transactional = true): Batch {
  return {
    label,
    firstOffset: BigInt(firstOffset),
    lastOffsetDelta: count - 1,
    attributes: transactional ? IS_TRANSACTIONAL : 0,
    producerId: BigInt(producerId),
    records: Array.from({ length: count }, () => ({ key: null })),
  };
}

function control(label: string, offset: number, producerId: number, type: 0 | 1): Batch {
  return {
    label,
    firstOffset: BigInt(offset),
    lastOffsetDelta: 0,
    attributes: IS_TRANSACTIONAL | IS_CONTROL,
    producerId: BigInt(producerId),
    records: [{ key: marker(type) }],
  };
}

/** Runs the filter over one partition; returns the labels of the batches that still hold records. */
function visible(batches: Batch[], aborted: Array<[producerId: number, firstOffset: number]>): string[] {
  const partition = {
    abortedTransactions: aborted.map(([producerId, firstOffset]) => ({ producerId: BigInt(producerId), firstOffset: BigInt(firstOffset) })),
    records: batches,
  };
  dropAbortedRecords({ responses: [{ partitions: [partition] }] });
  assert.equal(partition.records.length, batches.length, 'no batch is removed, so the fetch position still moves past them');
  return partition.records.filter((b) => b.records.length > 0 && (b.attributes & IS_CONTROL) === 0).map((b) => b.label);
}

describe('dropAbortedRecords (read_committed, KIP-98)', () => {
  it('drops every aborted transaction of a producer that also committed between them', () => {
    const batches = [
      data('c1', 0, 7),
      control('commit', 1, 7, 1),
      data('a1', 2, 7, 3),
      control('abort', 5, 7, 0),
      data('c2', 6, 7),
      control('commit', 7, 7, 1),
      data('a2', 8, 7),
      control('abort', 9, 7, 0),
      data('c3', 10, 7),
      control('commit', 11, 7, 1),
    ];
    assert.deepEqual(
      visible(batches, [
        [7, 2],
        [7, 8],
      ]),
      ['c1', 'c2', 'c3'],
    );
  });

  it('drops an aborted transaction whose abort marker lies beyond the response', () => {
    assert.deepEqual(visible([data('c1', 0, 7), control('commit', 1, 7, 1), data('a1', 2, 7), data('a1-more', 3, 7)], [[7, 2]]), ['c1']);
  });

  it("keeps other producers' records written while a transaction was open, and plain records", () => {
    const batches = [
      data('a1', 0, 7),
      data('other', 1, 8),
      data('plain', 2, -1, 1, false),
      control('commit other', 3, 8, 1),
      data('a1-more', 4, 7),
      control('abort', 5, 7, 0),
    ];
    assert.deepEqual(visible(batches, [[7, 0]]), ['other', 'plain']);
  });

  it('applies aborted transactions listed out of order by first offset', () => {
    const batches = [data('a1', 0, 7), control('abort', 1, 7, 0), data('b1', 2, 8), control('abort', 3, 8, 0), data('c', 4, 7)];
    assert.deepEqual(
      visible(batches, [
        [8, 2],
        [7, 0],
      ]),
      ['c'],
    );
  });

  it('leaves a response without aborted transactions as it is', () => {
    const batches = [data('c1', 0, 7), control('commit', 1, 7, 1)];
    const partition = { abortedTransactions: null, records: batches };
    dropAbortedRecords({ responses: [{ partitions: [partition] }] });
    assert.equal(partition.records, batches);
  });
});
