/**
 * What the model sync remembers per model between restarts, in `<repo>/.inflow-delivery/<model>.json`
 * (a dot folder: the repository ignores it): the config of the last installed manifest, the last
 * control record, and which publish each installed version came from. Committed offsets skip
 * records already applied, so after a restart a control record must be merged with a manifest
 * config read long ago — this file is where both are kept. config.yaml is derived from it:
 * the manifest's config with the control record's labels/routing in place of its own.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfigText, validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import { modelConfigSchema } from '../repository/model-config.ts';
import type { Control, RejectReason } from './delivery-format.ts';
import { writeFileAtomic } from './staging-area.ts';

/** Name of the state folder inside the repository. */
export const STATE_DIR = '.inflow-delivery';

/** One model's delivery state. */
export interface ModelState {
  format: 1;
  /** Config of the last installed manifest that carried one. */
  config: Record<string, unknown> | null;
  /** Version whose manifest gave `config`. */
  configVersion: number | null;
  /** The last control record applied (null: none, or cleared). */
  control: Control | null;
  /** Installed version → publish id. */
  installed: Record<string, string>;
  /** Version → the last publish of it this follower refused, and why (until one of it is installed or it is deleted). */
  refused: Record<string, RefusedVersion>;
}

/** A publish the follower refused (shown by `inflow models list --repository`). */
export interface RefusedVersion {
  publishId: string | null;
  code: RejectReason;
  reason: string;
  /** ISO 8601, local clock. */
  at: string;
}

const empty = (): ModelState => ({ format: 1, config: null, configVersion: null, control: null, installed: {}, refused: {} });

/** Reads and writes the state files of one repository. */
export interface ModelStates {
  read(model: string): Promise<ModelState>;
  write(model: string, state: ModelState): Promise<void>;
}

export function createModelStates(repository: string): ModelStates {
  const dir = join(repository, STATE_DIR);
  return {
    async read(model) {
      let text: string;
      try {
        text = await readFile(join(dir, `${model}.json`), 'utf8');
      } catch {
        return empty();
      }
      try {
        const state = JSON.parse(text) as ModelState;
        return state.format === 1 ? { ...empty(), ...state } : empty();
      } catch {
        // A damaged state file costs only the merge base; config.yaml on disk still serves.
        return empty();
      }
    },
    async write(model, state) {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(join(dir, `${model}.json`), `${JSON.stringify(state, null, 2)}\n`);
    },
  };
}

/** The manifest config with the control record's labels and routing in place of its own. */
export function mergeControl(base: Record<string, unknown>, control: Control | null): Record<string, unknown> {
  const merged = { ...base };
  if (control?.labels !== undefined) merged.labels = control.labels;
  if (control?.routing === null) delete merged.routing;
  else if (control?.routing !== undefined) merged.routing = control.routing;
  return merged;
}

function baseConfig(state: ModelState, current: string | undefined, path: string): Record<string, unknown> | null {
  if (state.config !== null || current === undefined) return state.config;
  const parsed = parseConfigText(current, path);
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
}

/**
 * The config a version would be loaded with: the one its manifest ships, else the state's, else
 * the config.yaml on disk; null when there is none (or the one on disk does not parse).
 */
export async function effectiveConfig(
  repository: string,
  model: string,
  state: ModelState,
  shipped: Record<string, unknown> | null,
): Promise<Record<string, unknown> | null> {
  if (shipped !== null) return shipped;
  const path = join(repository, model, 'config.yaml');
  const current = await readFile(path, 'utf8').catch(() => undefined);
  try {
    return baseConfig(state, current, path);
  } catch {
    return null;
  }
}

/**
 * Writes `<repo>/<model>/config.yaml` from the state (atomically, only when its text changes).
 * Without a shipped config the one on disk is the base. Returns what happened.
 * @throws InflowError INVALID_CONFIG when the merged config is not a valid config.yaml.
 */
export async function writeModelConfig(
  repository: string,
  model: string,
  state: ModelState,
): Promise<'written' | 'unchanged' | 'no-config'> {
  const path = join(repository, model, 'config.yaml');
  const current = await readFile(path, 'utf8').catch(() => undefined);
  const base = baseConfig(state, current, path);
  if (base === null) return 'no-config';
  const merged = mergeControl(base, state.control);
  validateConfig(modelConfigSchema, merged, `config of model "${model}" from the models topic`);
  const text = `# Written by inflow's model sync from the models topic; local edits are replaced by the next publish.\n${stringify(merged)}`;
  if (text === current) return 'unchanged';
  await mkdir(join(repository, model), { recursive: true });
  await writeFileAtomic(path, text);
  return 'written';
}

/** An INVALID_CONFIG from {@link writeModelConfig} as a one-line reason. */
export function configReason(error: unknown): string {
  return InflowError.from(error, 'INVALID_CONFIG').message.replace(/\n\s*/g, '; ');
}
