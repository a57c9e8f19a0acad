/** inflow streams: builder → immutable topology → runner, the predict operator, dead letters, test driver. */
export { createStreamsBuilder, type KStream, type Named, type StreamsBuilder } from './api/streams-builder.ts';
export type { Serdes, Serializer, SinkSerdes, Topology, TopologyNode } from './api/topology.ts';
export type { KeyValue, RecordOrigin, StreamRecord } from './api/stream-record.ts';
export { headerText, withHeader } from './api/stream-record.ts';
export type { PredictionInfo, PredictOptions, PredictRetry, PredictTarget } from './api/predict-spec.ts';
export type { InputField, OutputField } from './api/field-mapping.ts';
export type { Forward, ProcessFn, ProcessorContext, StoreRef } from './api/processor-context.ts';
export type { AggregateOptions, KGroupedStream, WindowedKStream } from './api/grouped-stream.ts';
export type { KTable } from './api/ktable.ts';
export type { EventTime, WindowOptions, Windowed, WindowSpec } from './api/windows.ts';
export {
  createKeyValueStore,
  jsonValueSerde,
  type KeyValueBytesStore,
  type KeyValueStore,
  orderedKeySerde,
  type StoreKey,
  type StoreSerde,
  type StoreSerdes,
} from './state/key-value-store.ts';
export { createMemoryStore, type MemoryKeyValueStore } from './state/memory-store.ts';
export { createMemoryStoreProvider, type MemoryStoreProvider, type StoreProvider, type StoreWriter } from './state/store-provider.ts';
export { MODEL_HEADER, MODEL_VERSION_HEADER, REQUEST_ID_HEADER } from './runtime/prediction-log.ts';
export { Stage, StageError } from './runtime/stage-error.ts';
export { DeadLetterHeader, ErrorPolicy } from './runtime/dead-letter.ts';
export { createStreamsRunner } from './runtime/streams-runner.ts';
export { Guarantee, type RunnerStats, type StreamsRunner, type StreamsRunnerOptions } from './runtime/streams-runner-options.ts';
export { createStreamsMetrics, type StreamsMetrics } from './runtime/streams-metrics.ts';
export {
  createTopologyTestDriver,
  type TestRecord,
  type TopologyTestDriver,
  type StoredWindow,
  type TopologyTestDriverOptions,
} from './testing/topology-test-driver.ts';
