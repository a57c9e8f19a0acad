/**
 * What the OIP clients check once before the first call to a model (the client's start: nothing
 * connects earlier), so that a configuration the server cannot serve fails with what to change
 * instead of an opaque error per record:
 *
 * - a pinned `version` must be one the server lists for the model — MLServer and KServe models are
 *   unversioned (`"versions": []` or none) and a versioned path fails there;
 * - `oipBinary: true` needs the server to announce the `binary_tensor_data` extension in `GET /v2`
 *   — MLServer does not, and answers binary requests with HTTP 500.
 *
 * Both are FAILED_PRECONDITION (not retried: the config must change). A check that could not run
 * (the server unreachable) is not remembered, so the next call checks again.
 */
import { InflowError } from '../errors.ts';
import type { ModelMetadata } from '../serving/types.ts';
import { endpointName, type RemoteEndpoint } from './remote-errors.ts';
import type { Target } from './remote-target.ts';

/** What a check needs from its client. */
export interface PreflightSource {
  endpoint: RemoteEndpoint;
  /** The model's metadata (all versions). */
  metadata(model: string): Promise<Pick<ModelMetadata, 'versions'>>;
  /** The server's `name`, `version` and `extensions` (only asked when `binary` is on). */
  serverMetadata?: () => Promise<{ name: string; version: string; extensions: string[] }>;
  /** The client sends the binary tensor data extension. */
  binary: boolean;
}

/** Runs the checks of a target once; concurrent first calls share one check. */
export type Preflight = (target: Target) => Promise<void>;

export function createPreflight(source: PreflightSource): Preflight {
  const where = endpointName(source.endpoint);
  const done = new Map<string, Promise<void>>();
  let server: Promise<void> | undefined;

  const checkServer = async (): Promise<void> => {
    if (!source.binary || !source.serverMetadata) return;
    const meta = await source.serverMetadata();
    if (!meta.extensions.includes('binary_tensor_data')) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `${where} (${meta.name || 'server'} ${meta.version}) does not announce the binary_tensor_data extension ` +
          `(its extensions: ${meta.extensions.join(', ') || 'none'}); set oipBinary: false for this remote (JSON tensors)`,
      );
    }
  };

  const checkTarget = async (target: Target): Promise<void> => {
    server ??= checkServer().catch((error: unknown) => {
      server = undefined;
      throw error;
    });
    await server;
    if (target.version === undefined) return;
    const { versions } = await source.metadata(target.model);
    if (!versions.includes(target.version)) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        versions.length === 0
          ? `${where}: model "${target.model}" has no versions on this server (MLServer and KServe models are unversioned); ` +
              `remove "version: ${target.version}" from the step that calls it`
          : `${where}: model "${target.model}" has no version ${target.version}; the server has ${versions.join(', ')}: ` +
              `use one of them, or remove "version" for the server's choice`,
      );
    }
  };

  return (target) => {
    const key = `${target.model}\u0000${target.version ?? ''}`;
    let check = done.get(key);
    if (!check) {
      check = checkTarget(target).catch((error: unknown) => {
        // A config problem is remembered (it fails every call the same way); anything else is retried.
        if (!(error instanceof InflowError && error.code === 'FAILED_PRECONDITION')) done.delete(key);
        throw error;
      });
      done.set(key, check);
    }
    return check;
  };
}
