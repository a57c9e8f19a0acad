/**
 * Applies models-topic records to a repository folder, one at a time and in topic order:
 * chunks go to the staging area, a manifest installs its version (after every size and sha256
 * matched) or rejects it with a reason, a control record rewrites config.yaml's labels/routing,
 * a manifest tombstone removes the version. It knows nothing about consumers or offsets beyond
 * {@link RecordApplier.holdBack}: the first offset per partition that must be read again after a
 * restart, because a publish whose chunks start there has no manifest yet.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { InflowError } from '../errors.ts';
import type { ConsumedRecord } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import {
  chunkHeaders,
  type Control,
  controlSchema,
  type Manifest,
  manifestBytes,
  manifestSchema,
  parseJsonValue,
  parseKey,
} from './delivery-format.ts';
import { configReason, createModelStates, writeModelConfig } from './model-state.ts';
import { compareWithDisk, createStagingArea } from './staging-area.ts';

/** Something the sync did, for callers that react at once (tests, a refresh hook, metrics). */
export type ModelSyncEvent =
  | { type: 'installed'; model: string; version: number; bytes: number }
  | { type: 'skipped'; model: string; version: number }
  | { type: 'rejected'; model: string; version?: number; reason: string }
  | { type: 'abandoned'; model: string; version: number; reason: string }
  | { type: 'deleted'; model: string; version: number }
  | { type: 'control'; model: string; control: Control | null }
  | { type: 'caught-up' }
  | { type: 'retrying'; reason: string; inMs: number };

/** Counters of a {@link RecordApplier}. */
export interface ApplierCounters {
  /** Versions placed into the repository. */
  installed: number;
  /** Versions whose manifest matched what was on disk already (not installed again). */
  skipped: number;
  /** Corrupt, partial or invalid versions and control records (never applied). */
  rejected: number;
  /** Publishes whose manifest never came (publisher gone) or that a newer publish replaced. */
  abandoned: number;
  deleted: number;
  controls: number;
  /** Chunk records staged and their bytes. */
  chunks: number;
  chunkBytes: number;
  /** Records that are not models-topic records. */
  ignored: number;
}

interface Pending {
  publishId: string;
  model: string;
  version: number;
  partition: number;
  firstOffset: bigint;
  /** Record timestamp of the latest chunk, ms. */
  lastSeen: number;
  /** Chunk numbers received per file index. */
  received: Map<number, Set<number>>;
  corrupt?: { file: number; n: number; expected: string; actual: string };
}

export interface RecordApplierOptions {
  repository: string;
  logger: Logger;
  /** A publish with no new chunk for this long (by record timestamps) and no manifest is given up, ms. */
  abandonAfterMs: number;
  onEvent?: (event: ModelSyncEvent) => void;
}

export interface RecordApplier {
  apply(record: ConsumedRecord): Promise<'chunk' | 'manifest' | 'control' | 'ignored'>;
  /** The lowest offset of `partition` that belongs to a publish still waiting for its manifest. */
  holdBack(partition: number): bigint | undefined;
  /** Forgets pending publishes and empties the staging area (before the topic is re-read from the committed offset). */
  reset(): Promise<void>;
  pending(): number;
  readonly counters: Readonly<ApplierCounters>;
}

export function createRecordApplier(options: RecordApplierOptions): RecordApplier {
  const { repository, logger: log } = options;
  const staging = createStagingArea(repository);
  const states = createModelStates(repository);
  const pending = new Map<string, Pending>();
  const counters: ApplierCounters = {
    installed: 0,
    skipped: 0,
    rejected: 0,
    abandoned: 0,
    deleted: 0,
    controls: 0,
    chunks: 0,
    chunkBytes: 0,
    ignored: 0,
  };
  const emit = (event: ModelSyncEvent): void => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      log.warn({ err: error }, 'a model sync event listener failed');
    }
  };

  function reject(model: string, version: number | undefined, reason: string): void {
    counters.rejected++;
    const what = version === undefined ? `model ${model}` : `model ${model} version ${version}`;
    log.error({ model, version, reason }, `${what}: ${reason}; not installed`);
    emit({ type: 'rejected', model, ...(version === undefined ? {} : { version }), reason });
  }

  async function abandon(p: Pending, reason: string): Promise<void> {
    pending.delete(p.publishId);
    await staging.discard(p.publishId);
    counters.abandoned++;
    log.warn(
      { model: p.model, version: p.version, publishId: p.publishId },
      `model ${p.model} version ${p.version}: ${reason}; staged chunks dropped`,
    );
    emit({ type: 'abandoned', model: p.model, version: p.version, reason });
  }

  async function onChunk(r: ConsumedRecord, model: string, version: number, file: number, n: number): Promise<'chunk' | 'ignored'> {
    if (r.value === null) return 'ignored'; // tombstone of a deleted version's chunk
    const h = chunkHeaders(r.headers);
    if (typeof h === 'string') {
      log.warn({ key: r.key?.toString(), offset: r.offset.toString() }, `chunk record ignored: ${h}`);
      counters.ignored++;
      return 'ignored';
    }
    let p = pending.get(h.publishId);
    if (!p) {
      p = {
        publishId: h.publishId,
        model,
        version,
        partition: r.partition,
        firstOffset: r.offset,
        lastSeen: r.timestamp,
        received: new Map(),
      };
      pending.set(h.publishId, p);
    }
    if (p.model !== model || p.version !== version) {
      counters.ignored++;
      return 'ignored';
    }
    p.lastSeen = Math.max(p.lastSeen, r.timestamp);
    if (p.corrupt) return 'chunk'; // rejected when its manifest comes; no point staging more
    const actual = createHash('sha256').update(r.value).digest('hex');
    if (actual !== h.sha256) {
      p.corrupt = { file, n, expected: h.sha256, actual };
      return 'chunk';
    }
    await staging.writeChunk(h.publishId, file, h.offset, r.value);
    const set = p.received.get(file) ?? new Set<number>();
    set.add(n);
    p.received.set(file, set);
    counters.chunks++;
    counters.chunkBytes += r.value.length;
    return 'chunk';
  }

  /** Why a publish cannot be installed, or undefined. */
  async function problem(p: Pending | undefined, m: Manifest): Promise<string | undefined> {
    if (!p) return 'no chunk of this publish was read (partial publish, or a later publish of the same version replaced its chunks)';
    if (p.corrupt) {
      const path = m.files[p.corrupt.file]?.path ?? `#${p.corrupt.file}`;
      return `chunk ${p.corrupt.n} of file ${path} sha256 mismatch (expected ${p.corrupt.expected}, got ${p.corrupt.actual})`;
    }
    for (const [index, f] of m.files.entries()) {
      const got = p.received.get(index)?.size ?? 0;
      if (got !== f.chunks) return `file ${f.path}: ${got} of ${f.chunks} chunks received`;
      const reason = await staging.verify(p.publishId, index, f);
      if (reason) return reason;
    }
    return undefined;
  }

  async function onManifest(r: ConsumedRecord, model: string, version: number): Promise<void> {
    if (r.value === null) return onDelete(model, version);
    let m: Manifest;
    try {
      m = parseJsonValue(manifestSchema, r.value, 'the manifest');
      if (m.model !== model || m.version !== version) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `the manifest names model ${m.model} version ${m.version} under key ${r.key?.toString() ?? ''}`,
        );
      }
    } catch (error) {
      return reject(model, version, InflowError.from(error).message);
    }
    const p = pending.get(m.publishId);
    for (const other of [...pending.values()]) {
      if (other !== p && other.model === model && other.version === version)
        await abandon(other, 'a later manifest of this version replaced an unfinished publish');
    }
    pending.delete(m.publishId);
    let outcome: { event: ModelSyncEvent; reason?: string };
    try {
      outcome = await install(p, m);
    } finally {
      // Staged bytes go whatever happened; a failure here (disk) re-reads them after the reconnect.
      await staging.discard(m.publishId);
    }
    if (outcome.reason !== undefined) return reject(model, version, outcome.reason);
    emit(outcome.event);
  }

  /** Installs (or skips) a publish; returns the event, or the reason it is rejected. */
  async function install(p: Pending | undefined, m: Manifest): Promise<{ event: ModelSyncEvent; reason?: string }> {
    const { model, version } = m;
    const target = join(repository, model, String(version));
    const state = await states.read(model);
    const next = { ...state, installed: { ...state.installed, [version]: m.publishId } };
    if (m.config !== null) Object.assign(next, { config: m.config, configVersion: version });
    if ((await compareWithDisk(target, m.files)) === undefined) {
      await writeModelConfig(repository, model, next).catch((error: unknown) =>
        log.warn({ model }, `config not updated: ${configReason(error)}`),
      );
      await states.write(model, next);
      counters.skipped++;
      log.info({ model, version }, `model ${model} version ${version} is already on disk with matching sha256s; not downloaded again`);
      return { event: { type: 'skipped', model, version } };
    }
    const rejected = (reason: string) => ({ event: { type: 'rejected', model, version, reason } as const, reason });
    const reason = await problem(p, m);
    if (reason) return rejected(reason);
    try {
      if ((await writeModelConfig(repository, model, next)) === 'no-config') {
        log.warn(
          { model },
          `model ${model} has no config.yaml and its manifest carries none: the repository will not load it until one exists`,
        );
      }
    } catch (error) {
      return rejected(`its config is invalid: ${configReason(error)}`);
    }
    await staging.install(m.publishId, m, target);
    await states.write(model, next);
    counters.installed++;
    log.info({ model, version, bytes: manifestBytes(m), files: m.files.length }, `model ${model} version ${version} installed`);
    return { event: { type: 'installed', model, version, bytes: manifestBytes(m) } };
  }

  async function onDelete(model: string, version: number): Promise<void> {
    for (const p of [...pending.values()]) if (p.model === model && p.version === version) await abandon(p, 'the version was deleted');
    const removed = await staging.remove(join(repository, model, String(version)));
    const state = await states.read(model);
    if (state.installed[version] !== undefined) {
      const installed = Object.fromEntries(Object.entries(state.installed).filter(([v]) => v !== String(version)));
      await states.write(model, { ...state, installed });
    }
    if (!removed) return;
    counters.deleted++;
    log.info({ model, version }, `model ${model} version ${version} deleted (tombstone in the models topic)`);
    emit({ type: 'deleted', model, version });
  }

  async function onControl(r: ConsumedRecord, model: string): Promise<void> {
    let control: Control | null = null;
    try {
      if (r.value !== null) control = parseJsonValue(controlSchema, r.value, 'the control record');
      if (control && control.model !== model) throw new InflowError('INVALID_ARGUMENT', `the control record names model ${control.model}`);
    } catch (error) {
      return reject(model, undefined, `control record rejected: ${InflowError.from(error).message}`);
    }
    const state = { ...(await states.read(model)), control };
    try {
      if ((await writeModelConfig(repository, model, state)) === 'no-config') {
        log.warn({ model }, `model ${model}: control record kept; no config.yaml to apply it to yet`);
      }
    } catch (error) {
      return reject(model, undefined, `control record rejected: ${configReason(error)}`);
    }
    await states.write(model, state);
    counters.controls++;
    log.info({ model, labels: control?.labels, routing: control?.routing }, `model ${model}: labels/routing updated`);
    emit({ type: 'control', model, control });
  }

  return {
    counters,
    async apply(r) {
      // Record timestamps, not the local clock: a re-read of old records must not abandon anything.
      for (const p of [...pending.values()]) {
        if (r.timestamp - p.lastSeen > options.abandonAfterMs)
          await abandon(p, `no manifest within ${options.abandonAfterMs} ms of its last chunk`);
      }
      const key = parseKey(r.key);
      if (!key) {
        counters.ignored++;
        return 'ignored';
      }
      if (key.kind === 'chunk') return onChunk(r, key.model, key.version, key.file, key.n);
      if (key.kind === 'manifest') await onManifest(r, key.model, key.version);
      else await onControl(r, key.model);
      return key.kind;
    },
    holdBack(partition) {
      let low: bigint | undefined;
      for (const p of pending.values()) if (p.partition === partition && (low === undefined || p.firstOffset < low)) low = p.firstOffset;
      return low;
    },
    async reset() {
      pending.clear();
      await staging.reset();
    },
    pending: () => pending.size,
  };
}
