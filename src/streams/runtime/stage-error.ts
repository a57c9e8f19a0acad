/**
 * The failure of one input record somewhere in the topology: which stage and node failed, and
 * why. The runner applies the error policy to it (dead-letter, skip or fail); the dead-letter
 * record carries the stage in its `inflow-error-stage` header.
 */
import { InflowError } from '../../errors.ts';

/** Where in the pipeline a record failed (the DLQ header `inflow-error-stage`). */
export const Stage = {
  DESERIALIZE: 'deserialize',
  PROCESS: 'process',
  PREDICT: 'predict',
  SERIALIZE: 'serialize',
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

/** A failure of one input record. */
export class StageError extends Error {
  override readonly name = 'StageError';
  readonly stage: Stage;
  readonly node: string;
  readonly error: InflowError;
  /** The model that failed, for predict errors. */
  readonly model: string | undefined;

  constructor(stage: Stage, node: string, error: unknown, model?: string) {
    const inflow = InflowError.from(error);
    super(`${stage} failed at node "${node}": ${inflow.message}`, { cause: inflow });
    this.stage = stage;
    this.node = node;
    this.error = inflow;
    this.model = model;
  }
}
