/**
 * Model sync: keeps a local model repository equal to what the models topic says, so the
 * repository's hot reload (src/repository) serves new versions as they are published.
 *
 * Offsets and restarts. The sync commits after every manifest and control record it applied,
 * but never past the first chunk of a publish whose manifest it has not read yet: chunks are
 * staged on disk, and a crash between chunks and manifest would otherwise lose chunks that the
 * committed offset says were read. So the committed offset is `min(next offset, first chunk of
 * every unfinished publish)`; on (re)start the staging area is emptied and those chunks are read
 * again. (The alternative — keep staged chunks across restarts and trust them — needs the staging
 * folder to survive exactly as long as the group's offsets, which nothing guarantees.) A publish
 * whose manifest never comes is given up after `abandonAfterMs` so it cannot hold offsets back
 * for ever. A restart with the group's offsets reads nothing it already applied; one without
 * (new group, offsets expired after a long offline period) reads the topic again, stages the
 * chunks, finds every sha256 matching on disk and installs nothing again (`skipped`).
 *
 * Offline first. The repository on disk is the state: `start()` waits at most `startTimeoutMs`
 * for the topic, then returns either way; the sync keeps retrying in the background (the Kafka
 * layer's capped backoff with jitter, 1 s → 30 s; one log line when the topic goes away, one
 * when it is back) and `ready` resolves once it has caught up with the topic's end.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { InflowError } from '../errors.ts';
import { type ConnectionState, createConnectionMonitor, isTransient, reportTo, retryTransient } from '../kafka/connection.ts';
import type { KafkaAdmin, KafkaClient, KafkaConsumer } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { DEFAULT_MODELS_TOPIC } from './delivery-format.ts';
import { ensureModelsTopic, IDLE_POLLS_AT_END } from './models-topic.ts';
import type { RejectReason } from './delivery-format.ts';
import type { TrustedKey } from './manifest-signing.ts';
import { type ApplierCounters, createRecordApplier, type ModelSyncEvent } from './record-applier.ts';

export type { ModelSyncEvent } from './record-applier.ts';

/** Options of {@link createModelSync}. Times are ms. */
export interface ModelSyncOptions {
  client: KafkaClient;
  /** Default `inflow-models`. */
  topic?: string;
  /** The model repository folder this sync writes into. */
  repository: string;
  logger?: Logger;
  /**
   * Consumer group; one per repository (every pipeline/server materializes its own copy).
   * Default `inflow-models-<host>-<hash of the repository path>`.
   */
  groupId?: string;
  /** How long `start()` waits to catch up before going on with the local state. Default 30 000. */
  startTimeoutMs?: number;
  /** Create the topic (compacted) when it is missing. Default true. */
  createTopic?: boolean;
  /** Give up a publish that has had no chunk for this long and no manifest. Default 15 min. */
  abandonAfterMs?: number;
  /** Backoff between reconnects: doubles from min to max, with jitter. Defaults 1 000 and 30 000. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Longest wait of one poll. Default 1 000. */
  pollTimeoutMs?: number;
  /**
   * Install only versions whose manifest is signed by one of these keys (see docs/model-delivery.md,
   * "Trust"). Empty or absent: signatures are not checked, and whoever can write the topic decides
   * what is installed.
   */
  trustedKeys?: readonly TrustedKey[];
  /** Accept versions of platforms that run code from the version folder (module). Default false. */
  allowExecutablePlatforms?: boolean;
  /** Bytes staged for unfinished publishes at most (sparse extents count in full). Default 8 GiB. */
  maxStagingBytes?: number;
  /** Called after each install, skip, rejection, deletion, control, reconnect, and on catching up (after every (re)connect). */
  onEvent?: (event: ModelSyncEvent) => void;
}

export const SyncState = {
  IDLE: 'idle',
  CONNECTING: 'connecting',
  CATCHING_UP: 'catching-up',
  LIVE: 'live',
  RETRYING: 'retrying',
  CLOSED: 'closed',
} as const;
export type SyncState = (typeof SyncState)[keyof typeof SyncState];

/** What {@link ModelSync.stats} reports. */
export interface ModelSyncStats extends ApplierCounters {
  state: SyncState;
  groupId: string;
  /** Caught up with the topic's end at least once since start. */
  caughtUp: boolean;
  /** Publishes with chunks staged and no manifest yet. */
  pending: number;
  /** Whether this sync last reached Kafka (`disconnected` from its first failed try until one works). */
  connection: ConnectionState;
  /** Failed connection attempts and sessions. */
  errors: number;
  lastError?: string;
  lastRejection?: { model: string; version?: number; reason: string; code: RejectReason };
  /** Refusals by reason code (the `reason` label of inflow_model_sync_rejected_total). */
  rejectedByReason: Record<string, number>;
}

/** A running sync of one repository with the models topic. */
export interface ModelSync {
  /** Starts syncing; resolves once caught up with the topic's end, or after `startTimeoutMs` with the local state. */
  start(): Promise<void>;
  /** Resolves when first caught up; rejects (CANCELLED) if closed before. */
  readonly ready: Promise<void>;
  stats(): ModelSyncStats;
  /** Stops syncing (a version being installed finishes first). */
  close(): Promise<void>;
}

/** The default group id: stable for one repository folder on one host. */
export function defaultSyncGroupId(repository: string): string {
  return `inflow-models-${hostname()}-${createHash('sha1').update(resolve(repository)).digest('hex').slice(0, 12)}`;
}

export function createModelSync(options: ModelSyncOptions): ModelSync {
  const { client, repository } = options;
  const topic = options.topic ?? DEFAULT_MODELS_TOPIC;
  const groupId = options.groupId ?? defaultSyncGroupId(repository);
  const log = (options.logger ?? silentLogger).child({ component: 'model-sync', topic });
  const retryMin = options.retryMinMs ?? 1000;
  const retryMax = options.retryMaxMs ?? 30_000;
  // This sync's own view (one log line per change, in its component's log) and the client's
  // shared one (what a server's readiness reads).
  const monitor = createConnectionMonitor({ logger: log, name: `Kafka (models topic "${topic}")` });
  const reporter = reportTo(monitor, client.connection);
  let lastRejection: ModelSyncStats['lastRejection'];
  const applier = createRecordApplier({
    repository,
    logger: log,
    abandonAfterMs: options.abandonAfterMs ?? 15 * 60_000,
    ...(options.trustedKeys ? { trustedKeys: options.trustedKeys } : {}),
    ...(options.allowExecutablePlatforms ? { allowExecutablePlatforms: true } : {}),
    ...(options.maxStagingBytes !== undefined ? { maxStagingBytes: options.maxStagingBytes } : {}),
    onEvent: (event) => {
      if (event.type === 'rejected')
        lastRejection = {
          model: event.model,
          ...(event.version === undefined ? {} : { version: event.version }),
          reason: event.reason,
          code: event.code,
        };
      options.onEvent?.(event);
    },
  });
  const emitSafe = (event: ModelSyncEvent): void => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      log.warn({ err: error }, 'a model sync event listener failed');
    }
  };
  const abort = new AbortController();
  let state: SyncState = 'idle';
  let caughtUp = false;
  let errors = 0;
  let lastError: string | undefined;
  let loop: Promise<void> | undefined;
  let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const ready = new Promise<void>((res, rej) => {
    settle = { resolve: res, reject: rej };
  });
  // A caller that never looks at `ready` must not get an unhandled rejection on close.
  ready.catch(() => undefined);

  /** Once per start: resolves `ready`. */
  const markCaughtUp = (): void => {
    if (caughtUp) return;
    caughtUp = true;
    const c = applier.counters;
    log.info({ installed: c.installed, skipped: c.skipped, rejected: c.rejected }, 'model sync caught up with the models topic');
    settle?.resolve();
  };

  const wait = (ms: number): Promise<void> =>
    new Promise((res) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', done);
        res();
      }
      abort.signal.addEventListener('abort', done, { once: true });
    });

  /** An open connection to the models topic: where each partition stands. */
  interface Session {
    readonly admin: KafkaAdmin;
    readonly consumer: KafkaConsumer;
    readonly assigned: ReadonlyArray<{ partition: number }>;
    readonly endOf: Map<number, bigint>;
    /** Next offset to apply, and the offset committed, per partition. */
    readonly next: Map<number, bigint>;
    readonly done: Map<number, bigint>;
  }

  /** Opens a session: the topic, a subscribed consumer, end and committed offsets. Closes what it opened on failure. */
  async function connect(): Promise<Session> {
    state = state === 'retrying' ? 'retrying' : 'connecting';
    await applier.reset();
    const admin = client.admin();
    // 16 buffered records bound memory to ~8 MiB of 512 KiB chunks.
    const consumer = client.consumer({ groupId, autoOffsetReset: 'earliest', maxBufferedRecords: 16 });
    // The real client's subscribe() waits out an outage by itself: close() must be able to end that wait.
    const stop = (): void => void consumer.close().catch(() => undefined);
    abort.signal.addEventListener('abort', stop, { once: true });
    try {
      if (options.createTopic ?? true) await ensureModelsTopic(admin, topic);
      await consumer.subscribe([topic]);
      const assigned = consumer.assignment().filter((p) => p.topic === topic);
      const [ends, starts, committed] = await Promise.all([
        admin.listOffsets(topic, 'latest'),
        admin.listOffsets(topic, 'earliest'),
        consumer.committed(assigned),
      ]);
      const startOf = new Map(starts.map((o) => [o.partition, o.offset]));
      const next = new Map<number, bigint>();
      const done = new Map<number, bigint>();
      for (const c of committed) {
        next.set(c.partition, c.offset >= 0n ? c.offset : (startOf.get(c.partition) ?? 0n));
        done.set(c.partition, c.offset);
      }
      return { admin, consumer, assigned, endOf: new Map(ends.map((o) => [o.partition, o.offset])), next, done };
    } catch (error) {
      await consumer.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
      throw error;
    } finally {
      abort.signal.removeEventListener('abort', stop);
    }
  }

  /** Polls and applies until closed or an error. */
  async function consume(s: Session): Promise<void> {
    const { consumer, assigned, endOf, next, done } = s;
    // With no partition assigned (another member of the group holds it, or the assignment is
    // not known yet) only the empty-poll rule below can say "caught up".
    const atEnd = (): boolean =>
      assigned.length > 0 && assigned.every((p) => (next.get(p.partition) ?? 0n) >= (endOf.get(p.partition) ?? 0n));
    const commit = async (): Promise<void> => {
      const offsets = [];
      for (const [partition, offset] of next) {
        const hold = applier.holdBack(partition);
        const safe = hold !== undefined && hold < offset ? hold : offset;
        if (safe > (done.get(partition) ?? -1n)) offsets.push({ topic, partition, offset: safe });
      }
      if (offsets.length === 0) return;
      await consumer.commit(offsets);
      for (const o of offsets) done.set(o.partition, o.offset);
    };
    state = 'catching-up';
    let isLive = false;
    const live = (): void => {
      if (isLive || abort.signal.aborted) return;
      isLive = true;
      state = 'live';
      markCaughtUp();
      emitSafe({ type: 'caught-up' });
    };
    if (atEnd()) live();
    let idle = 0;
    while (!abort.signal.aborted) {
      const records = await consumer.poll({ maxRecords: 16, timeoutMs: options.pollTimeoutMs ?? 1000, signal: abort.signal });
      for (const r of records) {
        const kind = await applier.apply(r);
        next.set(r.partition, r.offset + 1n);
        if (kind === 'manifest' || kind === 'control') await commit();
      }
      await commit();
      idle = records.length === 0 ? idle + 1 : 0;
      // The partition's last record can be missing (a cleaned tombstone): empty polls in a row then mean the end.
      if (!isLive && (atEnd() || idle >= IDLE_POLLS_AT_END)) live();
    }
  }

  /** Counts a failure in the stats and tells the listener (never a log line: the monitor logs changes). */
  const retrying = (e: InflowError, inMs: number): void => {
    errors++;
    lastError = `${e.code}: ${e.message}`;
    state = 'retrying';
    emitSafe({ type: 'retrying', reason: lastError, inMs });
  };

  /**
   * Sessions until closed. Connecting retries transient failures through the Kafka layer's
   * shared mechanism (../kafka/connection.ts): capped backoff with jitter, one log line when the
   * models topic goes away and one when it is back. A session lost mid-run reconnects the same
   * way. A failure retrying cannot fix (authorization, configuration) is logged once per
   * distinct reason and retried at the longest backoff: the local repository keeps serving and
   * an operator can fix the cause without a restart.
   */
  async function run(): Promise<void> {
    let refusal: string | undefined;
    while (!abort.signal.aborted) {
      let session: Session;
      try {
        session = await retryTransient(connect, {
          monitor: reporter,
          signal: abort.signal,
          initialMs: retryMin,
          maxMs: retryMax,
          onRetry: (e, delay) => retrying(e, delay),
        });
      } catch (error) {
        if (abort.signal.aborted) break;
        const e = InflowError.from(error);
        retrying(e, retryMax);
        if (refusal !== lastError) {
          refusal = lastError;
          log.error(
            { err: e, retryInMs: retryMax },
            `model sync cannot read the models topic (${e.message}); serving the local repository, retrying`,
          );
        }
        await wait(retryMax);
        continue;
      }
      refusal = undefined;
      try {
        await consume(session);
      } catch (error) {
        if (abort.signal.aborted) break;
        const e = InflowError.from(error);
        // Reported as a failure only when it is one of the connection: the next connect() logs and backs off.
        if (isTransient(e)) reporter.failed(e);
        retrying(e, 0);
      } finally {
        await session.consumer.close().catch(() => undefined);
        await session.admin.close().catch(() => undefined);
      }
    }
  }

  return {
    ready,
    async start() {
      if (loop) throw new InflowError('FAILED_PRECONDITION', `model sync of ${repository} was already started`);
      if (abort.signal.aborted) throw new InflowError('FAILED_PRECONDITION', `model sync of ${repository} is closed`);
      await mkdir(repository, { recursive: true });
      const keys = options.trustedKeys ?? [];
      if (options.allowExecutablePlatforms && keys.length === 0) {
        log.warn(
          'executable platforms (module) are allowed from the models topic and no trusted keys are configured: whoever can write the topic can run code in this process',
        );
      }
      log.info(
        { trustedKeys: keys.map((k) => k.id), allowExecutablePlatforms: options.allowExecutablePlatforms ?? false },
        keys.length > 0
          ? `installing only versions signed by ${keys.map((k) => k.id).join(', ')}`
          : 'installing unsigned versions (no trusted keys)',
      );
      loop = run();
      const limit = options.startTimeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ready.catch(() => undefined), new Promise<void>((res) => (timer = setTimeout(res, limit)))]);
      clearTimeout(timer);
      if (!caughtUp && !abort.signal.aborted) {
        log.warn(
          { waitedMs: limit, lastError },
          `models topic not caught up within ${limit} ms; going on with the local repository, syncing in the background`,
        );
      }
    },
    stats: () => ({
      ...applier.counters,
      state,
      groupId,
      caughtUp,
      connection: monitor.state,
      pending: applier.pending(),
      errors,
      ...(lastError === undefined ? {} : { lastError }),
      ...(lastRejection === undefined ? {} : { lastRejection }),
      rejectedByReason: Object.fromEntries(applier.rejectedByReason()),
    }),
    async close() {
      if (state === 'closed') return;
      abort.abort();
      await loop;
      state = 'closed';
      if (!caughtUp)
        settle?.reject(new InflowError('CANCELLED', `model sync of ${repository} closed before it caught up with the models topic`));
    },
  };
}
