/**
 * The demo's two stream pipelines, declared exactly as a user would write them in YAML (the
 * same schema, validation, builder and runner as `inflow stream`): digits events → predict with
 * digits-mlp → scored topic, once with the model EMBEDDED in the pipeline and once REMOTE on the
 * model server the demo started.
 */
import type { KafkaClient } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { createStreamsRunner, type StreamsRunner } from '../streams/index.ts';
import { type BuiltPipeline, buildPipeline, type PipelineConfigInput, validatePipelineConfig } from '../streams/pipeline/index.ts';

/** The deployment modes the demo runs side by side. */
export const DemoMode = { EMBEDDED: 'embedded', REMOTE: 'remote' } as const;
export type DemoMode = (typeof DemoMode)[keyof typeof DemoMode];

/** Remote protocols the demo can call the server with. */
export const DEMO_PROTOCOLS = ['oip-grpc', 'oip-rest', 'tfserving-grpc', 'tfserving-rest'] as const;
export type DemoProtocol = (typeof DEMO_PROTOCOLS)[number];

/** Topic names of one demo run (a run id keeps reruns on a real cluster apart). */
export interface DemoTopics {
  readonly input: string;
  readonly scored: Record<DemoMode, string>;
  readonly dlq: Record<DemoMode, string>;
}

/** The topics of run `run`. */
export function demoTopics(run: string): DemoTopics {
  const prefix = `inflow-demo-${run}`;
  return {
    input: `${prefix}-digits`,
    scored: { embedded: `${prefix}-embedded-scored`, remote: `${prefix}-remote-scored` },
    dlq: { embedded: `${prefix}-embedded-dlq`, remote: `${prefix}-remote-dlq` },
  };
}

/** What the pipeline configs are made from. */
export interface DemoPipelineSettings {
  readonly run: string;
  readonly topics: DemoTopics;
  /** The model repository both the embedded pipeline and the server load. */
  readonly modelRepository: string;
  /** `host:port` (gRPC) or `http://host:port` (REST) of the model server. */
  readonly remoteUrl: string;
  readonly protocol: DemoProtocol;
  readonly exactlyOnce: boolean;
}

/** The pipeline file of one mode, as it would be written in YAML (see examples/pipelines/). */
export function demoPipelineConfig(mode: DemoMode, s: DemoPipelineSettings): PipelineConfigInput {
  const using = mode === 'embedded' ? 'local' : 'server';
  return {
    applicationId: `inflow-demo-${mode}-${s.run}`,
    guarantee: s.exactlyOnce ? 'exactly-once' : 'at-least-once',
    errors: { policy: 'dlq', deadLetterTopic: s.topics.dlq[mode] },
    // Lag read every second: the dashboard charts it live.
    limits: { maxInFlight: 2048, maxPollRecords: 500, commitIntervalMs: 100, lagIntervalMs: 1000 },
    models:
      mode === 'embedded'
        ? { local: { embedded: { modelRepository: s.modelRepository, watch: false } } }
        : {
            server: {
              remote: {
                protocol: s.protocol,
                url: s.remoteUrl,
                timeoutMs: 5000,
                retry: { maxAttempts: 3 },
                circuitBreaker: { failureThreshold: 5, resetTimeoutMs: 2000 },
              },
            },
          },
    pipeline: [
      { source: { topic: s.topics.input, key: 'string', value: 'json' } },
      {
        predict: {
          name: `predict-${mode}`,
          model: 'digits-mlp',
          using,
          // No version: the router decides (the label/split set on the dashboard applies).
          inputs: { input: { field: 'pixels', dtype: 'FP32', shape: [64] } },
          outputs: { label: { tensor: 'label' } },
          maxBatch: 64,
          maxDelayMs: 2,
        },
      },
      { select: { fields: ['id', 'label'] } },
      { to: { topic: s.topics.scored[mode], value: 'json' } },
    ],
  };
}

/** One mode's built pipeline and its runner. */
export interface DemoPipeline {
  readonly mode: DemoMode;
  readonly built: BuiltPipeline;
  readonly runner: StreamsRunner;
}

/** Validates and builds the mode's pipeline (loads the embedded model) and creates its runner (not started). */
export async function createDemoPipeline(
  mode: DemoMode,
  s: DemoPipelineSettings,
  client: KafkaClient,
  logger: Logger,
): Promise<DemoPipeline> {
  const config = validatePipelineConfig(demoPipelineConfig(mode, s), `the demo's ${mode} pipeline`);
  const built = await buildPipeline(config, { source: `the demo's ${mode} pipeline`, logger });
  const runner = createStreamsRunner(built.topology, { ...built.runnerOptions, client, instanceId: `demo-${s.run}` });
  return { mode, built, runner };
}
