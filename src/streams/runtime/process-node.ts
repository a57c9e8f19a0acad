/**
 * The nodes that read state: a `process` node runs its function with a context that opens the
 * node's declared stores (the task's instances, through the {@link StoreProvider}, seen through
 * the record's write set), and a `lookup` node joins the record with a global table's row.
 */
import { InflowError } from '../../errors.ts';
import type { ProcessorContext } from '../api/processor-context.ts';
import type { StreamRecord } from '../api/stream-record.ts';
import type { Topology, TopologyNode } from '../api/topology.ts';
import { createKeyValueStore, type KeyValueStore } from '../state/key-value-store.ts';
import type { StoreProvider } from '../state/store-provider.ts';
import { joinOutputs, type NodeRunner, type Out, type Path, runUserFunction } from './node-runner.ts';

/** Runs a process node's function with its stores; forwards what it returns. */
export function runProcess(
  node: TopologyNode & { kind: 'process' },
  record: StreamRecord,
  path: Path,
  topology: Topology,
  provider: StoreProvider,
  run: NodeRunner,
): Out {
  const { topic, partition, offset } = record.origin;
  // Opened on first use, once per record; most nodes have one store, so no map for it.
  let opened: Map<string, KeyValueStore<unknown, unknown>> | undefined;
  let firstName: string | undefined;
  let first: KeyValueStore<unknown, unknown> | undefined;
  const context: ProcessorContext = {
    store<K, V>(name: string): KeyValueStore<K, V> {
      let s = name === firstName ? first : opened?.get(name);
      if (!s) {
        const declared = topology.stores.get(name);
        if (!declared || !node.stores.includes(name)) {
          throw new InflowError(
            'FAILED_PRECONDITION',
            `node "${node.name}" uses store "${name}" it did not declare; declared: [${node.stores.join(', ')}] (add it to the node's stores)`,
          );
        }
        s = createKeyValueStore(name, provider.store(path.task.taskId, name, record.origin), declared.serdes);
        if (first === undefined) {
          firstName = name;
          first = s;
        } else (opened ??= new Map()).set(name, s);
      }
      return s as KeyValueStore<K, V>;
    },
    timestamp: record.timestamp,
    streamTime: path.task.streamTime,
    topic,
    partition,
    offset,
    headers: record.headers,
    taskId: path.task.taskId,
  };
  const forwarded = runUserFunction(node, () => {
    const out = node.fn(record, context);
    return out ? [...out] : [];
  });
  if (forwarded.length === 0) return [];
  return joinOutputs(
    forwarded.map((f) =>
      run.children(
        node,
        { ...record, key: f.key, value: f.value, headers: f.headers ?? record.headers, timestamp: f.timestamp ?? record.timestamp },
        path,
      ),
    ),
  );
}

/** A stream-table join with a global table: the row of the record's key, or none. */
export function runLookup(
  node: TopologyNode & { kind: 'lookup' },
  record: StreamRecord,
  path: Path,
  table: KeyValueStore<unknown, unknown> | undefined,
  run: NodeRunner,
): Out {
  if (!table) throw new InflowError('INTERNAL', `global table "${node.table}" has no store on this instance`);
  const key = runUserFunction(node, () => node.key(record));
  // A key that does not serialize (an object, NaN) throws SERIALIZATION: a dead letter naming it.
  const row = key === null || key === undefined ? undefined : runUserFunction(node, () => table.get(key));
  if (row === undefined && node.inner) return [];
  const value = runUserFunction(node, () => node.joiner(record.value, row, record));
  return run.children(node, { ...record, value }, path);
}
