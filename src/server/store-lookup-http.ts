/**
 * The model server's {@link FeatureLookup} over HTTP: reads an entity's features from a stream
 * instance's interactive-query route (`GET <from>/v1/stores/<store>/keys/<key>`,
 * src/server/store-query-http.ts). Any instance of the pipeline will do: one that does not own
 * the key redirects (307) to the one that does, and fetch follows.
 */
import { InflowError } from '../errors.ts';
import { createCallDeadline } from '../serving/call-deadline.ts';
import type { FeatureLookup } from '../serving/feature-fill.ts';

export interface HttpFeatureLookupOptions {
  /** Bound on one lookup (redirect included), ms. Default 2000. */
  readonly timeoutMs?: number;
}

export function createHttpFeatureLookup(options: HttpFeatureLookupOptions = {}): FeatureLookup {
  const timeoutMs = options.timeoutMs ?? 2000;
  return async (features, entityKey, signal) => {
    const url = `${features.from.replace(/\/+$/, '')}/v1/stores/${encodeURIComponent(features.store)}/keys/${encodeURIComponent(entityKey)}`;
    // One deadline over the request, the redirect and the body; released when the lookup ends.
    const deadline = createCallDeadline(timeoutMs, `feature lookup at ${features.from}`, signal);
    try {
      let res: Response;
      try {
        res = await fetch(url, { signal: deadline.signal });
      } catch (e) {
        throw new InflowError('UNAVAILABLE', `feature store ${features.from} did not answer for "${entityKey}" (${(e as Error).message})`, {
          cause: e,
        });
      }
      const body = (await res.json().catch(() => ({}))) as { value?: unknown; error?: string; partition?: number; code?: string };
      if (res.status === 200) return body.value;
      // An absent key names its partition; an unknown store does not.
      if (res.status === 404 && body.partition !== undefined) return undefined;
      const reason = body.error ?? `HTTP ${res.status}`;
      if (res.status === 503) throw new InflowError('UNAVAILABLE', `feature store ${features.from}: ${reason}`);
      if (res.status === 404) throw new InflowError('FAILED_PRECONDITION', `feature store ${features.from}: ${reason}`);
      throw new InflowError('INTERNAL', `feature store ${features.from} answered ${res.status} for "${entityKey}": ${reason}`);
    } finally {
      deadline.end();
    }
  };
}
