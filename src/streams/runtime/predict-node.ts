/**
 * A predict node: submits the record's model inputs to the node's batcher and, once the
 * prediction is back, runs the rest of the path in offset order per partition.
 */
import type { StreamRecord } from '../api/stream-record.ts';
import { withHeader } from '../api/stream-record.ts';
import type { TopologyNode } from '../api/topology.ts';
import type { ProducerRecord } from '../../kafka/types.ts';
import type { NodeRunner, Out, Path } from './node-runner.ts';
import type { PredictBatcher } from './predict-batcher.ts';
import { MODEL_HEADER, MODEL_VERSION_HEADER, predictionLogRecord } from './prediction-log.ts';
import { Stage, StageError } from './stage-error.ts';
import { Turn } from './turn.ts';

/**
 * Everything after a predict runs in offset order per partition, not in the order batches
 * complete: a record takes a turn when it reaches the predict (records reach it in offset
 * order), its continuation waits until the turn before was passed, and passes its own once
 * it ran (synchronously, up to the next predict, whose turn comes after every turn taken so
 * far). A record that fails passes its turn on too, once the turn before was passed.
 */
export async function runPredict(
  node: TopologyNode & { kind: 'predict' },
  record: StreamRecord,
  path: Path,
  batcher: PredictBatcher,
  run: NodeRunner,
): Promise<ProducerRecord[]> {
  const order = path.order;
  const turn = order.tail;
  const mine = new Turn();
  order.tail = mine;
  // Returned after the finally: passed on once the continuation ran, before the predicts
  // after it finish (those wait for their own turns, which may come after the next
  // continuation's; returning their promise from inside would wait for them: a deadlock).
  let out: Out;
  try {
    const spec = node.spec;
    let inputs;
    let target;
    try {
      target = spec.targetOf(record);
      inputs = spec.toInputs(record);
    } catch (e) {
      throw new StageError(Stage.PREDICT, node.name, e, target?.model ?? spec.model);
    }
    let result;
    const started = performance.now();
    try {
      result = await batcher.submit(inputs, target, spec.routeKey(record), order.signal);
    } catch (e) {
      throw new StageError(Stage.PREDICT, node.name, e, target?.model ?? spec.model);
    }
    const latencyMs = performance.now() - started;
    const waiting = turn.wait();
    if (waiting) await waiting;
    let value: unknown;
    try {
      value = spec.toValue(record, result.outputs, result.info);
    } catch (e) {
      throw new StageError(Stage.PREDICT, node.name, e, target?.model ?? spec.model);
    }
    const headers = withHeader(
      withHeader(record.headers, MODEL_HEADER, result.info.model),
      MODEL_VERSION_HEADER,
      String(result.info.version),
    );
    out = run.children(node, { ...record, value, headers }, path);
    const log = spec.predictionLog;
    if (log) {
      const entry = predictionLogRecord(log, record, inputs, result, latencyMs);
      // A registry serde answers with a promise until the log's schema is registered.
      if (out instanceof Promise || entry instanceof Promise) {
        out = Promise.all([out, entry]).then(
          ([o, e]) => [...o, e],
          (e: unknown) => {
            throw e instanceof StageError ? e : new StageError(Stage.SERIALIZE, `${log.topic} (prediction log)`, e);
          },
        );
      } else {
        out = [...out, entry];
      }
    }
  } finally {
    mine.passAfter(turn);
  }
  return out;
}
