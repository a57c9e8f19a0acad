/**
 * inflow's side of the stateful benchmark (bench/streams/stateful-compare.ts): the pipeline YAML of
 * the windowed count + mean topology.
 */
export interface StatefulPipelineSpec {
  readonly bootstrap: string;
  readonly input: string;
  readonly output: string;
  readonly appId: string;
  readonly guarantee: 'at-least-once' | 'exactly-once';
  readonly stateDir: string;
  /** Tumbling window size, ms. */
  readonly windowMs: number;
}

/** The pipeline file's text. */
export function inflowStatefulPipeline(s: StatefulPipelineSpec): string {
  throw new Error(`inflow has no windowed aggregation yet (${s.appId})`);
}
