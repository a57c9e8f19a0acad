/** inflow streams: builder → immutable topology → runner, the predict operator, dead letters, test driver. */
export { createStreamsBuilder, type KStream, type Named, type StreamsBuilder } from './streams-builder.ts';
export type { Serdes, Serializer, SinkSerdes, Topology, TopologyNode } from './topology.ts';
export type { KeyValue, RecordOrigin, StreamRecord } from './stream-record.ts';
export { headerText, withHeader } from './stream-record.ts';
export type { PredictionInfo, PredictOptions, PredictRetry, PredictTarget } from './predict-spec.ts';
export type { InputField, OutputField } from './field-mapping.ts';
export { MODEL_HEADER, MODEL_VERSION_HEADER, REQUEST_ID_HEADER, Stage, StageError } from './record-processor.ts';
export { DeadLetterHeader, ErrorPolicy } from './dead-letter.ts';
export { createStreamsRunner, Guarantee, type RunnerStats, type StreamsRunner, type StreamsRunnerOptions } from './streams-runner.ts';
export { createStreamsMetrics, type StreamsMetrics } from './streams-metrics.ts';
export {
  createTopologyTestDriver,
  type TestRecord,
  type TopologyTestDriver,
  type TopologyTestDriverOptions,
} from './topology-test-driver.ts';
