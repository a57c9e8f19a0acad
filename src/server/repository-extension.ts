/**
 * Triton's model repository extension (index, load, unload), shared by its REST routes
 * (`POST /v2/repository/index`, `POST /v2/repository/models/{m}/load|unload`) and its gRPC
 * methods (`RepositoryIndex`, `RepositoryModelLoad`, `RepositoryModelUnload`). Both transports
 * serve it only behind the admin token. The repository folder stays the source of truth: a load
 * lifts an explicit unload and rescans the model's folder; load parameters that would override the
 * config or upload files (Triton's `config`, `file:…`) are refused.
 */
import { InflowError } from '../errors.ts';
import type { ModelRepository } from '../repository/model-repository.ts';

/** One row of a repository index, as both transports answer it (Triton's `ModelIndex`). */
export interface RepositoryIndexEntry {
  name: string;
  /** The version as a decimal string; "" for a model with no version loaded. */
  version: string;
  /** Triton's states: READY, LOADING, UNLOADING, UNAVAILABLE. */
  state: string;
  /** Why a model or version is not ready ("" when it is). */
  reason: string;
}

const STATES = { AVAILABLE: 'READY', LOADING: 'LOADING', UNLOADING: 'UNLOADING', END: 'UNAVAILABLE' } as const;

/** Every model and version of the repository; with `readyOnly`, only the READY versions. */
export function repositoryIndex(repo: ModelRepository, readyOnly: boolean): RepositoryIndexEntry[] {
  const models: RepositoryIndexEntry[] = [];
  for (const name of repo.models()) {
    const status = repo.status(name);
    if (!status) continue;
    if (status.versions.length === 0 && !readyOnly) {
      models.push({ name, version: '', state: 'UNAVAILABLE', reason: status.configError?.message ?? 'no version loaded' });
    }
    for (const v of status.versions) {
      const state = STATES[v.state];
      if (readyOnly && state !== 'READY') continue;
      models.push({ name, version: String(v.version), state, reason: v.error?.message ?? '' });
    }
  }
  return models;
}

/**
 * Loads `model` from its folder (lifting an explicit unload). `parameters` are the request's load
 * parameters by name: any is refused (UNIMPLEMENTED), as inflow loads folders as they are.
 * Resolves once a version is available; FAILED_PRECONDITION with the reason otherwise, NOT_FOUND
 * for a model the repository does not have.
 */
export async function repositoryLoad(repo: ModelRepository, model: string, parameters: readonly string[]): Promise<void> {
  if (parameters.length > 0) {
    throw new InflowError(
      'UNIMPLEMENTED',
      `load parameters (${parameters.join(', ')}) are not supported: inflow loads models from the repository folder as they are`,
    );
  }
  await repo.load(model);
  if (repo.available(model).length === 0) {
    const status = repo.status(model);
    const reason = status?.configError?.message ?? status?.versions.find((v) => v.error)?.error?.message;
    throw new InflowError(
      status ? 'FAILED_PRECONDITION' : 'NOT_FOUND',
      status
        ? `failed to load '${model}'${reason ? `: ${reason}` : ', no version is available'}`
        : `failed to load '${model}': no such model in the repository`,
    );
  }
}

/** Unloads every version of `model` and keeps it unloaded until a load (Triton's explicit model control); NOT_FOUND for an unknown model. */
export async function repositoryUnload(repo: ModelRepository, model: string): Promise<void> {
  await repo.unload(model);
}
