/**
 * The `accuracy:` block of the monitor file: where the labels are, how a label finds its
 * prediction, and the windows live accuracy is kept in.
 */
import { z } from 'zod';

/** Where an id or a value sits in a record: `key` (the record key as text) or a dotted path into the JSON value. */
const locationSchema = z.string().min(1);

export const accuracyConfigSchema = z.strictObject({
  /** The topic ground truth arrives on (JSON values; it must exist). */
  labelsTopic: z.string().min(1),
  /** `classification` (accuracy, precision/recall/F1, log-loss, confusion counts) or `regression` (MAE, RMSE). */
  task: z.enum(['classification', 'regression']).default('classification'),
  /**
   * The id joining a prediction with its label. `prediction`: `key` (the prediction log entry's
   * key: the input record's key), `requestId`, or a path into the entry (`inputs.id`);
   * `label`: `key` or a path into the label's JSON value.
   */
  id: z
    .strictObject({ prediction: locationSchema.default('key'), label: locationSchema.default('key') })
    .default({ prediction: 'key', label: 'key' }),
  /** The label in the label record: a path into its JSON value, or `value` when the value is the bare label. */
  labelField: locationSchema.default('label'),
  /** The predicted class/value: a path into the prediction log entry (`outputs.label`; a one-element array counts as its element). */
  prediction: locationSchema.default('outputs.label'),
  /** Class probabilities in the entry (`outputs.probabilities`), for log-loss; absent: no log-loss. */
  probabilities: locationSchema.optional(),
  /** Probability index → class; default: index i is class i. */
  classes: z
    .array(z.union([z.number(), z.string()]))
    .min(1)
    .optional(),
  /** Tumbling windows of prediction time the metrics are kept per, ms. */
  windowMs: z.number().int().positive().default(60_000),
  /** A label counts when its timestamp is at most this much after its prediction's, ms (later: a late label). */
  labelWindowMs: z.number().int().positive().default(600_000),
  /** Disorder tolerated: a label this much before its prediction still counts, and windows close this much later, ms. */
  graceMs: z.number().int().min(0).default(5_000),
  /** Bad labels (not JSON, no id, a label of the wrong type, an id no prediction had) go here with the reason. */
  deadLetterTopic: z.string().min(1).default('inflow-monitor-dlq'),
});
export type AccuracyConfig = z.output<typeof accuracyConfigSchema>;
