/**
 * The monitor file (`inflow monitor <monitor.yaml>`): which prediction log to watch, where the
 * versions' reference profiles are, the window, per-model drift thresholds, and where labels arrive.
 */
import { z } from 'zod';
import { kafkaConfigSchema } from '../config/kafka-config.ts';
import { accuracyConfigSchema } from './accuracy-config.ts';
import { DEFAULT_ALERTS_TOPIC } from './alerts.ts';
import { driftThresholdsSchema } from './drift-detector.ts';

export const monitorConfigSchema = z.strictObject({
  kafka: kafkaConfigSchema.optional(),
  /** The prediction log topic (a pipeline's `predictionLog: {topic, includeInputs: true}`, or the Kafka-native endpoint's). */
  predictionLog: z.string().min(1),
  /** Consumer group of the monitor. */
  groupId: z.string().min(1).default('inflow-monitor'),
  /** Drift alerts go here (a rollout's drift guard reads them). */
  alertsTopic: z.string().min(1).default(DEFAULT_ALERTS_TOPIC),
  /** One report per closed window and version (every feature's statistics), or "drift unavailable" with the reason. */
  monitoringTopic: z.string().min(1).default('inflow-monitoring'),
  /** The model repository holding each version's reference-profile.json. */
  modelRepository: z.string().min(1),
  /** When set, the monitor syncs this models topic into modelRepository itself (as inflow serve does). */
  modelsTopic: z.string().min(1).optional(),
  /** Tumbling windows over the prediction log's record time, ms. */
  windowMs: z.number().int().positive().default(60_000),
  /**
   * A window closes once a record this much later than its end was read, ms. A record for a window
   * already reported is late: counted (`stats().late`), not reported again.
   */
  graceMs: z.number().int().min(0).default(5_000),
  /** Per model: drift thresholds (defaults for models not named). */
  /** Live accuracy from late labels (./accuracy-config.ts); absent: drift only. */
  accuracy: accuracyConfigSchema.optional(),
  models: z.record(z.string(), z.strictObject({ drift: driftThresholdsSchema.default(driftThresholdsSchema.parse({})) })).default({}),
});
export type MonitorConfig = z.output<typeof monitorConfigSchema>;
