/**
 * The SIGNED and STATUS columns of `inflow models list`: who signed each version, and whether a
 * follower takes it. With `--repository` the answer is that follower's own record (what it
 * installed, what it refused and why, from `<dir>/.inflow-delivery/`); without, it is what a
 * follower with the given trusted keys and executable-platform setting would decide from the
 * manifest alone (a tampered chunk only shows once a follower has read it).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ManifestEntry,
  type ModelState,
  readSignature,
  RejectReason,
  STATE_DIR,
  type TrustedKey,
  verifyManifest,
} from '../delivery/index.ts';
import { isExecutablePlatform } from '../runtime/platform.ts';

/** One version's row. */
export interface ListStatus {
  /** Key id the manifest claims (verified when trusted keys were given), or undefined when unsigned. */
  signedBy?: string;
  /** `installed`, `refused (<code>)`, `not installed yet` (with --repository); `accepted`, `refused (<code>)` otherwise. */
  status: string;
  code?: RejectReason;
  reason?: string;
}

export interface ListStatusOptions {
  trustedKeys: readonly TrustedKey[];
  allowExecutable: boolean;
  /** A follower's repository folder: report its decisions instead. */
  repository?: string;
}

async function readState(repository: string, model: string): Promise<ModelState | undefined> {
  try {
    return JSON.parse(await readFile(join(repository, STATE_DIR, `${model}.json`), 'utf8')) as ModelState;
  } catch {
    return undefined;
  }
}

/** The status of each entry, in order. */
export async function listStatus(entries: readonly ManifestEntry[], options: ListStatusOptions): Promise<ListStatus[]> {
  const states = new Map<string, ModelState | undefined>();
  const out: ListStatus[] = [];
  for (const e of entries) {
    const m = e.manifest;
    const claimed = readSignature(e.headers)?.keyId;
    const signedBy = claimed === undefined ? {} : { signedBy: options.trustedKeys.length > 0 ? claimed : `${claimed} (unverified)` };
    if (options.repository !== undefined) {
      if (!states.has(m.model)) states.set(m.model, await readState(options.repository, m.model));
      const state = states.get(m.model);
      const refused = state?.refused?.[m.version];
      if (state?.installed?.[m.version] === m.publishId) out.push({ ...signedBy, status: 'installed' });
      else if (refused && refused.publishId === m.publishId) {
        out.push({ ...signedBy, status: `refused (${refused.code})`, code: refused.code, reason: refused.reason });
      } else out.push({ ...signedBy, status: 'not installed yet' });
      continue;
    }
    const verdict = verifyManifest(e.value, e.headers, options.trustedKeys);
    if ('code' in verdict) {
      out.push({ ...signedBy, status: `refused (${verdict.code})`, code: verdict.code, reason: verdict.reason });
    } else if (!options.allowExecutable && isExecutablePlatform(m.config?.platform)) {
      const code = RejectReason.EXECUTABLE_PLATFORM;
      const reason = `platform "${String(m.config?.platform)}" runs code from the version folder; followers refuse it unless they allow executable platforms`;
      out.push({ ...signedBy, status: `refused (${code})`, code, reason });
    } else out.push({ ...signedBy, status: 'accepted' });
  }
  return out;
}
