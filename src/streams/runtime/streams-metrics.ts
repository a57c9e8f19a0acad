/**
 * Prometheus metrics of a stream pipeline (one Registry per runner, no global state), labelled
 * by the pipeline's application id.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds: 100 µs … 60 s. */
const LATENCY = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BATCH = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export interface StreamsMetrics {
  readonly registry: Registry;
  readonly recordsIn: Counter<'pipeline'>;
  readonly recordsOut: Counter<'pipeline' | 'topic'>;
  readonly deadLettered: Counter<'pipeline' | 'stage' | 'code'>;
  readonly skipped: Counter<'pipeline' | 'stage' | 'code'>;
  readonly batchSize: Histogram<'pipeline' | 'node'>;
  readonly inferenceDuration: Histogram<'pipeline' | 'node'>;
  readonly inferenceRetries: Counter<'pipeline' | 'node' | 'code'>;
  /** Record timestamp → its outputs acknowledged by Kafka. */
  readonly endToEnd: Histogram<'pipeline'>;
  readonly inFlight: Gauge<'pipeline'>;
  readonly pausedPartitions: Gauge<'pipeline'>;
  /** 1 while the Kafka cluster is reachable, 0 during an outage (the runner retries meanwhile). */
  readonly kafkaConnected: Gauge<'pipeline'>;
  readonly consumerLag: Gauge<'pipeline' | 'topic' | 'partition'>;
  readonly commits: Counter<'pipeline'>;
  readonly rewinds: Counter<'pipeline' | 'reason'>;
  readonly redelivered: Counter<'pipeline'>;
  /** Changelog records replayed into stores on assignment. */
  readonly restoredRecords: Counter<'pipeline' | 'store'>;
  /** Changelog records still to replay, per store partition being restored (0 once restored). */
  readonly restoreRemaining: Gauge<'pipeline' | 'store' | 'partition'>;
  /** Store partitions being restored now (their input partitions are paused; not ready). */
  readonly restoringPartitions: Gauge<'pipeline'>;
}

/** Creates the metrics in `registry` (a new one by default). */
export function createStreamsMetrics(registry: Registry = new Registry()): StreamsMetrics {
  const registers = [registry];
  const p = ['pipeline'] as const;
  return {
    registry,
    recordsIn: new Counter({ name: 'inflow_stream_records_in_total', help: 'Records consumed', labelNames: p, registers }),
    recordsOut: new Counter({
      name: 'inflow_stream_records_out_total',
      help: 'Records produced (acknowledged)',
      labelNames: ['pipeline', 'topic'],
      registers,
    }),
    deadLettered: new Counter({
      name: 'inflow_stream_dead_letter_total',
      help: 'Input records sent to the dead-letter topic',
      labelNames: ['pipeline', 'stage', 'code'],
      registers,
    }),
    skipped: new Counter({
      name: 'inflow_stream_skipped_total',
      help: 'Failed input records skipped (policy skip)',
      labelNames: ['pipeline', 'stage', 'code'],
      registers,
    }),
    batchSize: new Histogram({
      name: 'inflow_stream_predict_batch_size',
      help: 'Records per inference call',
      labelNames: ['pipeline', 'node'],
      buckets: BATCH,
      registers,
    }),
    inferenceDuration: new Histogram({
      name: 'inflow_stream_predict_duration_seconds',
      help: 'Duration of one inference call',
      labelNames: ['pipeline', 'node'],
      buckets: LATENCY,
      registers,
    }),
    inferenceRetries: new Counter({
      name: 'inflow_stream_predict_retries_total',
      help: 'Inference calls retried after a retriable error',
      labelNames: ['pipeline', 'node', 'code'],
      registers,
    }),
    endToEnd: new Histogram({
      name: 'inflow_stream_end_to_end_seconds',
      help: 'Input record timestamp to its outputs acknowledged by Kafka',
      labelNames: p,
      buckets: LATENCY,
      registers,
    }),
    inFlight: new Gauge({
      name: 'inflow_stream_in_flight_records',
      help: 'Records consumed and not yet produced',
      labelNames: p,
      registers,
    }),
    pausedPartitions: new Gauge({
      name: 'inflow_stream_paused_partitions',
      help: 'Partitions paused by backpressure',
      labelNames: p,
      registers,
    }),
    kafkaConnected: new Gauge({
      name: 'inflow_stream_kafka_connected',
      help: 'Whether the Kafka cluster is reachable: 1 connected, 0 disconnected (retrying with backoff)',
      labelNames: p,
      registers,
    }),
    consumerLag: new Gauge({
      name: 'inflow_stream_consumer_lag',
      help: 'End offset minus committed offset, per input partition',
      labelNames: ['pipeline', 'topic', 'partition'],
      registers,
    }),
    commits: new Counter({
      name: 'inflow_stream_commits_total',
      help: 'Offset commits (transactions in exactly-once mode)',
      labelNames: p,
      registers,
    }),
    rewinds: new Counter({
      name: 'inflow_stream_rewinds_total',
      help: 'Times in-flight work was dropped and partitions rewound to their committed offsets',
      labelNames: ['pipeline', 'reason'],
      registers,
    }),
    restoredRecords: new Counter({
      name: 'inflow_stream_restore_records_total',
      help: 'Changelog records replayed into state stores on assignment, and global table rows read while a table loads',
      labelNames: ['pipeline', 'store'],
      registers,
    }),
    restoreRemaining: new Gauge({
      name: 'inflow_stream_restore_remaining_records',
      help: 'Changelog offsets left to replay per store partition being restored (0 once restored)',
      labelNames: ['pipeline', 'store', 'partition'],
      registers,
    }),
    restoringPartitions: new Gauge({
      name: 'inflow_stream_restore_active_partitions',
      help: 'Store partitions being restored from their changelogs (their input partitions are paused meanwhile)',
      labelNames: p,
      registers,
    }),
    redelivered: new Counter({
      name: 'inflow_stream_redelivered_records_total',
      help: 'Records the consumer delivered again at or below an offset already in flight; dropped (their outputs are on their way)',
      labelNames: p,
      registers,
    }),
  };
}
