/**
 * What inflow's wrapper relies on inside @platformatic/kafka beyond its documented API: a
 * private method it patches (read_committed filtering, ./read-committed-consumer.ts), getters
 * and transaction methods the exactly-once path reads (./platformatic-producer.ts), and the
 * events the consumer listens to ({@link LIBRARY_EVENTS}, ./platformatic-consumer.ts).
 * The dependency is pinned to one exact version (package.json); the Kafka contract suite
 * runs {@link libraryInternalsProblems} so an upgrade that moves any of these fails with a
 * line naming what moved, instead of losing or duplicating records silently.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Consumer, findErrorBy, Producer } from '@platformatic/kafka';
import { InflowError } from '../../errors.ts';

/** The version whose internals were checked (docs/decisions/0001-kafka-client.md, B1–B12). */
export const CHECKED_LIBRARY_VERSION = '2.12.1';

/** A symbol-keyed library method, found by its description on Consumer's prototype chain (the library does not export it). */
function librarySymbol(description: string): symbol {
  for (let p: object | null = Consumer.prototype; p; p = Object.getPrototypeOf(p) as object | null) {
    for (const s of Object.getOwnPropertySymbols(p)) if (s.description === description) return s;
  }
  throw new InflowError(
    'INTERNAL',
    `@platformatic/kafka changed: no ${description} method (inflow's read_committed and static-membership patches hook into it)`,
  );
}

/**
 * The library method that hands out protocol API functions by name: read_committed filtering
 * wraps its Fetch (./read-committed-consumer.ts), static membership its LeaveGroup (./static-membership.ts).
 */
export const kGetApi: symbol = librarySymbol('plt.kafka.base.getApi');

/** The installed version, read from the package's own package.json. */
export function installedLibraryVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@platformatic/kafka');
  // entry is <package>/dist/index.js
  const manifest = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

/**
 * Events of the library's Consumer that ./platformatic-consumer.ts listens to, how the library
 * emits each (`emitWithDebug(section, name)` emits `section:name`; no section: `name`), and what
 * breaks if it is no longer emitted. An event nobody emits fails silently — no listener is ever
 * called — so each one is checked here (and `consumer:group:join` on a real broker in the
 * contract suite). A listener added to the consumer must be added here (a unit test checks).
 */
export const LIBRARY_EVENTS = [
  {
    event: 'consumer:group:join',
    emitted: "emitWithDebug('consumer', 'group:join'",
    why: 'the generation of the assignment poll() applies (exactly-once commits after an unseen rebalance, issue 16)',
  },
  {
    event: 'consumer:heartbeat:error',
    emitted: "emitWithDebug('consumer:heartbeat', 'error'",
    why: 'a paused consumer notices a broker outage only through its heartbeats (rejoin after the outage)',
  },
  {
    event: 'error',
    emitted: "emitWithDebug(null, 'error'",
    why: 'a failed rejoin is reported as an error event; unheard it would end the process',
  },
] as const;

/** The library's compiled file that emits the consumer's events. */
function consumerSource(): string {
  const entry = createRequire(import.meta.url).resolve('@platformatic/kafka');
  return readFileSync(join(dirname(entry), 'clients', 'consumer', 'consumer.js'), 'utf8');
}

/** A symbol-keyed method on a class's prototype chain, found by its description. */
function hasSymbolMethod(proto: object, description: string): boolean {
  for (let p: object | null = proto; p; p = Object.getPrototypeOf(p) as object | null) {
    for (const s of Object.getOwnPropertySymbols(p)) {
      if (s.description === description) return typeof (p as Record<symbol, unknown>)[s] === 'function';
    }
  }
  return false;
}

/** Whether a getter or method exists on the prototype chain. */
function hasMember(proto: object, name: string): boolean {
  for (let p: object | null = proto; p; p = Object.getPrototypeOf(p) as object | null) {
    if (Object.getOwnPropertyDescriptor(p, name)) return true;
  }
  return false;
}

/**
 * Every way the installed library differs from what the wrapper was written against; empty when
 * none. `consumerSource` stands in for the library's consumer.js (tests).
 */
export function libraryInternalsProblems(options: { consumerSource?: string } = {}): string[] {
  const problems: string[] = [];
  const version = installedLibraryVersion();
  if (version !== CHECKED_LIBRARY_VERSION) {
    problems.push(
      `@platformatic/kafka ${version} is installed but the wrapper's patches were checked against ${CHECKED_LIBRARY_VERSION}: re-check B1–B12 in docs/decisions/0001-kafka-client.md, then update CHECKED_LIBRARY_VERSION`,
    );
  }
  if (!hasSymbolMethod(Consumer.prototype, 'plt.kafka.base.getApi')) {
    problems.push(
      'Consumer has no plt.kafka.base.getApi method: read_committed filtering (read-committed-consumer.ts) cannot hook the Fetch API',
    );
  }
  // Instance fields, not prototype members: a consumer that never connects shows them.
  const probe = new Consumer({ clientId: 'inflow-internals-check', bootstrapBrokers: ['127.0.0.1:1'], groupId: 'inflow-internals-check' });
  for (const name of ['memberId', 'generationId', 'coordinatorId', 'assignments', 'groupId']) {
    if (!(name in probe)) problems.push(`Consumer has no "${name}": transactions send group metadata from it (KIP-447)`);
  }
  void probe.close().catch(() => undefined);
  for (const name of ['beginTransaction', 'transaction']) {
    if (!hasMember(Producer.prototype, name)) problems.push(`Producer has no "${name}": the exactly-once path uses it`);
  }
  let source: string | undefined;
  try {
    source = options.consumerSource ?? consumerSource();
  } catch (error) {
    problems.push(
      `cannot read the library's clients/consumer/consumer.js (${(error as Error).message}): the consumer's events are unchecked`,
    );
  }
  for (const { event, emitted, why } of LIBRARY_EVENTS) {
    if (source !== undefined && !source.includes(emitted)) problems.push(`Consumer no longer emits "${event}" (${emitted}…): ${why}`);
  }
  // Static members must not leave the group on close (KIP-345): ./static-membership.ts answers
  // the library's LeaveGroup itself, so the library must still ask for it by this name.
  if (source !== undefined && !source.includes("this[kGetApi]('LeaveGroup'")) {
    problems.push(
      "Consumer no longer asks for \"LeaveGroup\" by name (this[kGetApi]('LeaveGroup', …)): a static member's close may leave the group (static-membership.ts)",
    );
  }
  if (typeof findErrorBy !== 'function') problems.push('findErrorBy is no longer exported: retry delays classify errors with it');
  return problems;
}
