/**
 * What the record processor's node functions share: the output of a path through the topology
 * (records to produce, a promise only when a predict or an async serde is on the path), the
 * per-record path context (the partition's processing order and the task), and the
 * {@link NodeRunner} through which a node hands its result to its children.
 */
import { InflowError } from '../../errors.ts';
import { inSpan, tracingActive } from '../../observability/tracing.ts';
import type { ProducerRecord } from '../../kafka/types.ts';
import type { StreamRecord } from '../api/stream-record.ts';
import type { TopologyNode } from '../api/topology.ts';
import { Stage, StageError } from './stage-error.ts';
import type { Turn } from './turn.ts';

/** The records a path produces; a promise only when something on the path is asynchronous. */
export type Out = ProducerRecord[] | Promise<ProducerRecord[]>;

/** A partition's order of continuations after predicts: `tail` is the last turn taken. */
export interface ProcessingOrder {
  tail: Turn;
  /** Aborted when the partition's records were dropped: their predictions that did not start never run. */
  readonly signal: AbortSignal | undefined;
}

/** The task a record is processed in: its id and stream time (ms). */
export interface TaskView {
  readonly taskId: string;
  readonly streamTime: number;
}

/** What the processor carries along one record's path. */
export interface Path {
  readonly order: ProcessingOrder;
  readonly task: TaskView;
}

/** How a node continues: runs its children on a record. */
export interface NodeRunner {
  children(node: TopologyNode, record: StreamRecord, path: Path): Out;
}

/** Concatenates the outputs of several paths; a promise only when one of them is. */
export function joinOutputs(parts: Out[]): Out {
  // One path (a node with one child, one record forwarded): its output as it is, no copy.
  if (parts.length === 1) return parts[0] as Out;
  if (!parts.some((p) => p instanceof Promise)) return (parts as ProducerRecord[][]).flat();
  return Promise.all(parts.map(async (p) => p)).then((ps) => ps.flat());
}

/** Runs a node's user function; what it throws fails the record at the PROCESS stage. */
export function runUserFunction<T>(node: TopologyNode, fn: () => T): T {
  try {
    // Tracing on: one span per user function, named after its node (decode-request, …).
    return tracingActive() ? inSpan(node.name, fn) : fn();
  } catch (e) {
    throw new StageError(
      Stage.PROCESS,
      node.name,
      e instanceof InflowError ? e : new InflowError('INVALID_ARGUMENT', (e as Error)?.message ?? String(e), { cause: e }),
    );
  }
}
