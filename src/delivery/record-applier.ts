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
import { isExecutablePlatform } from '../runtime/platform.ts';
import {
  chunkHeaders,
  type Control,
  controlSchema,
  Header,
  headerText,
  MAX_CHUNK_SIZE,
  type Manifest,
  manifestBytes,
  manifestSchema,
  parseJsonValue,
  parseKey,
  RejectReason,
} from './delivery-format.ts';
import { type Refusal, signedBytes, type TrustedKey, verifyManifest, verifySigned } from './manifest-signing.ts';
import { configReason, createModelStates, effectiveConfig, type ModelState, writeModelConfig } from './model-state.ts';
import { compareWithDisk, createStagingArea } from './staging-area.ts';

/** Default bound on the bytes staged for unfinished publishes, 8 GiB (sparse extents count in full). */
export const DEFAULT_MAX_STAGING_BYTES = 8 * 1024 ** 3;
/** Chunk records staged at once, over all unfinished publishes: bounds the bookkeeping a flood of tiny chunks can make. */
export const MAX_STAGED_CHUNKS = 1_048_576;

/** Something the sync did, for callers that react at once (tests, a refresh hook, metrics). */
export type ModelSyncEvent =
  | { type: 'installed'; model: string; version: number; bytes: number }
  | { type: 'skipped'; model: string; version: number }
  | { type: 'rejected'; model: string; version?: number; reason: string; code: RejectReason }
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
  /** Chunks received per file index: chunk number → where it was written (bytes). */
  received: Map<number, Map<number, { offset: number; length: number }>>;
  /** Highest byte written + 1 per file index: the staged file's size, sparse or not. */
  extent: Map<number, number>;
  /** Sum of `extent` (bytes), chunks in `received`, and the longest chunk 0 of any file: running totals, so a chunk costs O(1) to check. */
  bytes: number;
  count: number;
  longestFirst: number;
  /** The chunk size the chunks' offsets imply (`offset / n`), once a chunk with n > 0 came. */
  chunkSize?: number;
  /** Why the publish is refused already (its staging is gone; later chunks are dropped). */
  refused?: Refusal;
}

export interface RecordApplierOptions {
  repository: string;
  logger: Logger;
  /** A publish with no new chunk for this long (by record timestamps) and no manifest is given up, ms. */
  abandonAfterMs: number;
  /** Manifests must be signed by one of these (none: signatures are not checked). */
  trustedKeys?: readonly TrustedKey[];
  /** Accept versions of platforms that run code from the version folder (module). Default false. */
  allowExecutablePlatforms?: boolean;
  /** Bytes staged for unfinished publishes at most, sparse extents counted in full. Default {@link DEFAULT_MAX_STAGING_BYTES}. */
  maxStagingBytes?: number;
  /** Wall clock for the refusal times kept in the state, ms. */
  now?: () => number;
  onEvent?: (event: ModelSyncEvent) => void;
}

export interface RecordApplier {
  apply(record: ConsumedRecord): Promise<'chunk' | 'manifest' | 'control' | 'ignored'>;
  /** Refusals so far by reason code. */
  rejectedByReason(): ReadonlyMap<RejectReason, number>;
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
  const rejectedBy = new Map<RejectReason, number>();
  const trustedKeys = options.trustedKeys ?? [];
  const maxStaging = options.maxStagingBytes ?? DEFAULT_MAX_STAGING_BYTES;
  const now = options.now ?? Date.now;
  const emit = (event: ModelSyncEvent): void => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      log.warn({ err: error }, 'a model sync event listener failed');
    }
  };

  /** Counts, logs (one line) and reports a refusal; a refused version is also kept in the model's state with its reason. */
  async function reject(model: string, version: number | undefined, refusal: Refusal, publishId?: string): Promise<void> {
    const { code, reason } = refusal;
    counters.rejected++;
    rejectedBy.set(code, (rejectedBy.get(code) ?? 0) + 1);
    const what = version === undefined ? `model ${model}` : `model ${model} version ${version}`;
    log.error({ model, version, publishId, reason: code }, `${what} refused (${code}): ${reason}; not installed`);
    if (version !== undefined) {
      try {
        const state = await states.read(model);
        const refused = { ...state.refused, [version]: { publishId: publishId ?? null, code, reason, at: new Date(now()).toISOString() } };
        await states.write(model, { ...state, refused });
      } catch (error) {
        log.warn({ err: error, model }, 'could not record the refusal in the delivery state');
      }
    }
    emit({ type: 'rejected', model, ...(version === undefined ? {} : { version }), reason, code });
  }

  const stagedBytes = (): number => {
    let sum = 0;
    for (const p of pending.values()) sum += p.bytes;
    return sum;
  };
  const stagedChunks = (): number => {
    let sum = 0;
    for (const p of pending.values()) sum += p.count;
    return sum;
  };

  /** Refuses a publish before its manifest came: its staging goes at once, later chunks are dropped. */
  async function refuseEarly(p: Pending, refusal: Refusal): Promise<void> {
    p.refused = refusal;
    p.received.clear();
    p.extent.clear();
    p.bytes = 0;
    p.count = 0;
    await staging.discard(p.publishId);
    log.warn(
      { model: p.model, version: p.version, publishId: p.publishId, reason: refusal.code },
      `model ${p.model} version ${p.version}: ${refusal.reason}; staged chunks dropped`,
    );
  }

  /**
   * Checks a chunk's place before anything is written: chunk 0 starts at 0, chunk n at n × the
   * chunk size (the same for every chunk of a publish, at most MAX_CHUNK_SIZE), no chunk longer
   * than that, and the staging space stays within its bound. A chunk far out in a file would
   * otherwise make a sparse file that costs nothing to write and minutes to hash.
   */
  function placeProblem(p: Pending, file: number, n: number, offset: number, length: number): Refusal | undefined {
    const integrity = (reason: string): Refusal => ({ code: RejectReason.INTEGRITY, reason });
    const where = `chunk ${n} of file #${file} (offset ${offset}, ${length} bytes)`;
    if (length === 0) return integrity(`${where} is empty; only a file's last chunk may be shorter than the chunk size, and never empty`);
    if (n === 0) {
      if (offset !== 0) return integrity(`${where} must start at offset 0`);
      if (length > (p.chunkSize ?? MAX_CHUNK_SIZE))
        return integrity(`${where} is longer than the chunk size ${p.chunkSize ?? MAX_CHUNK_SIZE}`);
    } else {
      const size = offset / n;
      if (!Number.isInteger(size) || size < 1 || size > MAX_CHUNK_SIZE) {
        return integrity(`${where}: its offset is not n × a chunk size of 1..${MAX_CHUNK_SIZE} bytes`);
      }
      if (p.chunkSize !== undefined && p.chunkSize !== size) {
        return integrity(`${where}: its offset implies chunk size ${size}, earlier chunks of this publish ${p.chunkSize}`);
      }
      if (length > size) return integrity(`${where} is longer than the chunk size ${size}`);
      if (p.longestFirst > size) return integrity(`${where}: chunk 0 of a file is longer (${p.longestFirst}) than the chunk size ${size}`);
    }
    const grow = Math.max(0, offset + length - (p.extent.get(file) ?? 0));
    const total = stagedBytes() + grow;
    if (total > maxStaging) {
      return {
        code: RejectReason.STAGING_LIMIT,
        reason: `${where} would take the staged bytes of unfinished publishes to ${total}, over the limit of ${maxStaging} (maxStagingBytes)`,
      };
    }
    if (stagedChunks() >= MAX_STAGED_CHUNKS) {
      return { code: RejectReason.STAGING_LIMIT, reason: `more than ${MAX_STAGED_CHUNKS} chunk records staged at once` };
    }
    return undefined;
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
        extent: new Map(),
        bytes: 0,
        count: 0,
        longestFirst: 0,
      };
      pending.set(h.publishId, p);
    }
    if (p.model !== model || p.version !== version) {
      counters.ignored++;
      return 'ignored';
    }
    p.lastSeen = Math.max(p.lastSeen, r.timestamp);
    if (p.refused) return 'chunk'; // rejected when its manifest comes; no point staging more
    const actual = createHash('sha256').update(r.value).digest('hex');
    if (actual !== h.sha256) {
      await refuseEarly(p, {
        code: RejectReason.INTEGRITY,
        reason: `chunk ${n} of file #${file} sha256 mismatch (expected ${h.sha256}, got ${actual})`,
      });
      return 'chunk';
    }
    const misplaced = placeProblem(p, file, n, h.offset, r.value.length);
    if (misplaced) {
      await refuseEarly(p, misplaced);
      return 'chunk';
    }
    if (n > 0) p.chunkSize = h.offset / n;
    await staging.writeChunk(h.publishId, file, h.offset, r.value);
    const chunks = p.received.get(file) ?? new Map<number, { offset: number; length: number }>();
    if (!chunks.has(n)) p.count++;
    chunks.set(n, { offset: h.offset, length: r.value.length });
    p.received.set(file, chunks);
    const extent = p.extent.get(file) ?? 0;
    const end = h.offset + r.value.length;
    if (end > extent) {
      p.extent.set(file, end);
      p.bytes += end - extent;
    }
    if (n === 0) p.longestFirst = Math.max(p.longestFirst, r.value.length);
    counters.chunks++;
    counters.chunkBytes += r.value.length;
    return 'chunk';
  }

  /**
   * Why a publish cannot be installed, or undefined. Every chunk's offset and length is checked
   * against the manifest before any staged file is read, so hashing never reads more bytes than
   * the manifest declares and the chunks really delivered.
   */
  async function problem(p: Pending | undefined, m: Manifest): Promise<Refusal | undefined> {
    const integrity = (reason: string): Refusal => ({ code: RejectReason.INTEGRITY, reason });
    if (!p) {
      const reason = 'no chunk of this publish was read (partial publish, or a later publish of the same version replaced its chunks)';
      return { code: RejectReason.INCOMPLETE, reason };
    }
    if (p.refused) {
      // The early reason names files by index; the manifest knows their paths now.
      return {
        code: p.refused.code,
        reason: p.refused.reason.replace(/file #(\d+)/g, (all, i: string) =>
          m.files[Number(i)] ? `file ${m.files[Number(i)]?.path}` : all,
        ),
      };
    }
    const total = manifestBytes(m);
    if (total > maxStaging) {
      return {
        code: RejectReason.STAGING_LIMIT,
        reason: `the version has ${total} bytes, over the staging limit of ${maxStaging} (maxStagingBytes)`,
      };
    }
    for (const index of p.received.keys()) {
      if (index >= m.files.length) return integrity(`chunks of file #${index}, which the manifest does not list (${m.files.length} files)`);
    }
    for (const [index, f] of m.files.entries()) {
      const got = p.received.get(index) ?? new Map<number, { offset: number; length: number }>();
      for (const [n, at] of got) {
        const offset = n * m.chunkSize;
        const length = Math.min(m.chunkSize, f.size - offset);
        if (n >= f.chunks || at.offset !== offset || at.length !== length) {
          return integrity(
            `chunk ${n} of file ${f.path} is ${at.length} bytes at offset ${at.offset}; the manifest (${f.size} bytes in ${f.chunks} chunks of ${m.chunkSize}) puts ${n < f.chunks ? `${length} bytes at offset ${offset}` : 'no such chunk'}`,
          );
        }
      }
      if (got.size !== f.chunks)
        return { code: RejectReason.INCOMPLETE, reason: `file ${f.path}: ${got.size} of ${f.chunks} chunks received` };
    }
    for (const [index, f] of m.files.entries()) {
      const reason = await staging.verify(p.publishId, index, f);
      if (reason) return integrity(reason);
    }
    return undefined;
  }

  /** Whether this follower may install the manifest at all: its signature, and the platform it would run with. */
  async function trustProblem(r: ConsumedRecord, m: Manifest, state: ModelState): Promise<Refusal | undefined> {
    const signed = verifyManifest(r.value ?? Buffer.alloc(0), r.headers, trustedKeys);
    if ('code' in signed) return signed;
    if (options.allowExecutablePlatforms) return undefined;
    const config = await effectiveConfig(repository, m.model, state, m.config);
    const platform = config?.platform;
    if (isExecutablePlatform(platform)) {
      return {
        code: RejectReason.EXECUTABLE_PLATFORM,
        reason: `its config${m.config === null ? ' (the one on this follower)' : ''} names platform "${String(platform)}", which runs code from the version folder; executable platforms are not accepted from the models topic unless the follower allows them (allowExecutablePlatforms)`,
      };
    }
    return undefined;
  }

  async function onManifest(r: ConsumedRecord, model: string, version: number): Promise<void> {
    if (r.value === null) return onDelete(r, model, version);
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
      const publishId = headerText(r.headers, Header.PUBLISH_ID);
      return reject(model, version, { code: RejectReason.INVALID_MANIFEST, reason: InflowError.from(error).message }, publishId);
    }
    const p = pending.get(m.publishId);
    for (const other of [...pending.values()]) {
      if (other !== p && other.model === model && other.version === version)
        await abandon(other, 'a later manifest of this version replaced an unfinished publish');
    }
    pending.delete(m.publishId);
    let outcome: { event: ModelSyncEvent; refusal?: Refusal };
    try {
      outcome = await install(r, p, m);
    } finally {
      // Staged bytes go whatever happened; a failure here (disk) re-reads them after the reconnect.
      await staging.discard(m.publishId);
    }
    if (outcome.refusal !== undefined) return reject(model, version, outcome.refusal, m.publishId);
    emit(outcome.event);
  }

  /** Installs (or skips) a publish; returns the event, or why it is refused. */
  async function install(r: ConsumedRecord, p: Pending | undefined, m: Manifest): Promise<{ event: ModelSyncEvent; refusal?: Refusal }> {
    const { model, version } = m;
    const target = join(repository, model, String(version));
    const state = await states.read(model);
    const rejected = (refusal: Refusal) => ({ event: { type: 'rejected', model, version, ...refusal } as const, refusal });
    // Before the skip below too: an untrusted manifest must not even rewrite the config of a version already on disk.
    const untrusted = await trustProblem(r, m, state);
    if (untrusted) return rejected(untrusted);
    const refused = Object.fromEntries(Object.entries(state.refused).filter(([v]) => v !== String(version)));
    const next = { ...state, installed: { ...state.installed, [version]: m.publishId }, refused };
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
      return rejected({ code: RejectReason.INVALID_CONFIG, reason: `its config is invalid: ${configReason(error)}` });
    }
    await staging.install(m.publishId, m, target);
    await states.write(model, next);
    counters.installed++;
    log.info({ model, version, bytes: manifestBytes(m), files: m.files.length }, `model ${model} version ${version} installed`);
    return { event: { type: 'installed', model, version, bytes: manifestBytes(m) } };
  }

  async function onDelete(r: ConsumedRecord, model: string, version: number): Promise<void> {
    const signed = verifySigned(signedBytes(r.key, null), r.headers, trustedKeys, `the deletion of version ${version}`);
    // Not kept in the state as a refused version: the version itself stays installed.
    if ('code' in signed)
      return reject(model, undefined, { code: signed.code, reason: `deletion of version ${version} refused: ${signed.reason}` });
    for (const p of [...pending.values()]) if (p.model === model && p.version === version) await abandon(p, 'the version was deleted');
    const removed = await staging.remove(join(repository, model, String(version)));
    const state = await states.read(model);
    if (state.installed[version] !== undefined || state.refused[version] !== undefined) {
      const keep = ([v]: [string, unknown]): boolean => v !== String(version);
      const installed = Object.fromEntries(Object.entries(state.installed).filter(keep));
      const refused = Object.fromEntries(Object.entries(state.refused).filter(keep));
      await states.write(model, { ...state, installed, refused });
    }
    if (!removed) return;
    counters.deleted++;
    log.info({ model, version }, `model ${model} version ${version} deleted (tombstone in the models topic)`);
    emit({ type: 'deleted', model, version });
  }

  async function onControl(r: ConsumedRecord, model: string): Promise<void> {
    let control: Control | null = null;
    const signed = verifySigned(signedBytes(r.key, r.value), r.headers, trustedKeys, 'the control record (labels/routing)');
    if ('code' in signed) return reject(model, undefined, { code: signed.code, reason: `control record refused: ${signed.reason}` });
    try {
      if (r.value !== null) control = parseJsonValue(controlSchema, r.value, 'the control record');
      if (control && control.model !== model) throw new InflowError('INVALID_ARGUMENT', `the control record names model ${control.model}`);
    } catch (error) {
      return reject(model, undefined, {
        code: RejectReason.INVALID_CONTROL,
        reason: `control record rejected: ${InflowError.from(error).message}`,
      });
    }
    const state = { ...(await states.read(model)), control };
    try {
      if ((await writeModelConfig(repository, model, state)) === 'no-config') {
        log.warn({ model }, `model ${model}: control record kept; no config.yaml to apply it to yet`);
      }
    } catch (error) {
      return reject(model, undefined, { code: RejectReason.INVALID_CONTROL, reason: `control record rejected: ${configReason(error)}` });
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
    rejectedByReason: () => rejectedBy,
  };
}
