/**
 * read_committed filtering of a fetch response, as the Java consumer does it (KIP-98,
 * CompletedFetch#nextFetchedRecord). The broker bounds a read_committed fetch by the last stable
 * offset but still returns aborted records: it lists the aborted transactions overlapping the
 * fetched range (producer id, first offset) and the client drops their batches.
 *
 * @platformatic/kafka 2.12's own filter keeps one aborted range per producer id, from the first
 * offset of its last listed aborted transaction to its last abort marker in the response, and
 * ignores a range whose marker lies beyond the response. With a stable transactional id (one
 * producer id across restarts) every aborted transaction but the last of a response reached
 * read_committed readers (measured: commit, abort, commit, abort, commit → both aborted records
 * delivered), and an abort marker without data in the partition stretched the range over
 * committed transactions, which were dropped (1 664 predictions lost in a crash test). The
 * consumer keeps the library's filter from running (./read-committed-consumer.ts) and uses this.
 */
import { IS_CONTROL, IS_TRANSACTIONAL } from '@platformatic/kafka';

/** Control record type of an abort marker (the key is version int16, type int16; 0 = ABORT, 1 = COMMIT). */
const ABORT = 0;

/** The fields of a record batch this pass reads. */
export interface FetchedBatch {
  readonly firstOffset: bigint;
  readonly lastOffsetDelta: number;
  readonly attributes: number;
  readonly producerId: bigint;
  readonly records: ReadonlyArray<{ readonly key?: Buffer | null }>;
}

/** The fields of a fetch response this pass reads and rewrites. */
export interface FetchedResponse<B extends FetchedBatch = FetchedBatch> {
  readonly responses: ReadonlyArray<{
    readonly partitions: Array<{
      abortedTransactions: ReadonlyArray<{ readonly producerId: bigint; readonly firstOffset: bigint }> | null;
      records?: B[] | null;
    }>;
  }>;
}

function isAbortMarker(batch: FetchedBatch): boolean {
  const key = batch.records[0]?.key;
  return (batch.attributes & IS_CONTROL) !== 0 && key !== undefined && key !== null && key.length >= 4 && key.readInt16BE(2) === ABORT;
}

/**
 * Empties the records of every aborted batch in `response` (in place). The batches stay, with
 * no records, so the stream still advances its fetch position past them: dropping the last
 * batches of a partition would make it fetch them again, forever when a response holds only
 * aborted data whose marker lies beyond it.
 */
export function dropAbortedRecords<B extends FetchedBatch>(response: FetchedResponse<B>): void {
  for (const topic of response.responses) {
    for (const partition of topic.partitions) {
      const batches = partition.records;
      const listed = partition.abortedTransactions;
      if (!batches || !listed || listed.length === 0) continue;
      const aborted = [...listed].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
      const abortedProducers = new Set<bigint>();
      let next = 0;
      partition.records = batches.map((batch) => {
        const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta);
        // A producer is aborted from the first offset of its aborted transaction to its abort marker.
        for (let t = aborted[next]; t !== undefined && t.firstOffset <= lastOffset; t = aborted[++next]) abortedProducers.add(t.producerId);
        if (isAbortMarker(batch)) {
          abortedProducers.delete(batch.producerId);
          return batch;
        }
        const transactional = (batch.attributes & IS_TRANSACTIONAL) !== 0 && (batch.attributes & IS_CONTROL) === 0;
        return transactional && abortedProducers.has(batch.producerId) ? { ...batch, records: [] } : batch;
      });
    }
  }
}
