/**
 * The live signals a guarded rollout reads, from where inflow already exposes them: the
 * Prometheus endpoints of the servers and pipelines that follow the models topic (request
 * successes and failures and the latency histogram per model version, shadow agreement per
 * primary/shadow version, live accuracy when a monitor publishes it). Counters are summed over
 * the endpoints; a guard looks at the difference between two scrapes.
 */
import { InflowError } from '../errors.ts';
import { parsePrometheusText } from './prometheus-text.ts';

/** Counters of one model version. */
export interface VersionCounters {
  success: number;
  failure: number;
  /** Latency histogram, cumulative count per upper bound (seconds). */
  buckets: Map<number, number>;
}

/** What the endpoints said about one model, summed. */
export interface SignalSnapshot {
  versions: Map<number, VersionCounters>;
  /** `<version>><shadow_version>` → shadow requests and agreements. */
  shadow: Map<string, { requests: number; agreement: number }>;
  /** Latest live accuracy per version (gauge `inflow_live_accuracy`), when a monitor exports it. */
  accuracy: Map<number, number>;
  /** Endpoints that could not be read, with why. */
  unreachable: string[];
}

const empty = (): VersionCounters => ({ success: 0, failure: 0, buckets: new Map() });

/** Adds one endpoint's text for `model` into `into`. */
export function addExposition(into: SignalSnapshot, text: string, model: string): void {
  for (const s of parsePrometheusText(text)) {
    if (s.labels.model !== model) continue;
    const version = Number(s.labels.version);
    if (!Number.isInteger(version)) continue;
    const v = into.versions.get(version) ?? empty();
    switch (s.name) {
      case 'inflow_inference_request_success_total':
        v.success += s.value;
        break;
      case 'inflow_inference_request_failure_total':
        v.failure += s.value;
        break;
      case 'inflow_inference_request_duration_seconds_bucket': {
        const le = Number(s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : s.labels.le);
        v.buckets.set(le, (v.buckets.get(le) ?? 0) + s.value);
        break;
      }
      case 'inflow_shadow_requests_total':
      case 'inflow_shadow_agreement_total': {
        const key = `${version}>${s.labels.shadow_version ?? ''}`;
        const sh = into.shadow.get(key) ?? { requests: 0, agreement: 0 };
        if (s.name === 'inflow_shadow_requests_total') sh.requests += s.value;
        else sh.agreement += s.value;
        into.shadow.set(key, sh);
        continue;
      }
      case 'inflow_live_accuracy':
        into.accuracy.set(version, s.value);
        continue;
      default:
        continue;
    }
    into.versions.set(version, v);
  }
}

/** Scrapes every endpoint (in parallel, `timeoutMs` each) and sums what they say about `model`. */
export async function scrapeSignals(urls: readonly string[], model: string, timeoutMs = 5000): Promise<SignalSnapshot> {
  const snapshot: SignalSnapshot = { versions: new Map(), shadow: new Map(), accuracy: new Map(), unreachable: [] };
  const texts = await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return await res.text();
      } catch (error) {
        snapshot.unreachable.push(`${url}: ${(error as Error).message}`);
        return '';
      }
    }),
  );
  for (const text of texts) addExposition(snapshot, text, model);
  return snapshot;
}

/** Counter increase from `then` to `now`; a reset (an endpoint restarted) counts from zero, as Prometheus' rate() does. */
const inc = (now: number, then: number): number => (now >= then ? now - then : now);

/** What happened between two snapshots (counters as increases; accuracy as the latest value). */
export function signalDelta(now: SignalSnapshot, then: SignalSnapshot): SignalSnapshot {
  const versions = new Map<number, VersionCounters>();
  for (const [version, v] of now.versions) {
    const t = then.versions.get(version) ?? empty();
    versions.set(version, {
      success: inc(v.success, t.success),
      failure: inc(v.failure, t.failure),
      buckets: new Map([...v.buckets].map(([le, c]) => [le, inc(c, t.buckets.get(le) ?? 0)])),
    });
  }
  const shadow = new Map(
    [...now.shadow].map(([k, s]) => {
      const t = then.shadow.get(k) ?? { requests: 0, agreement: 0 };
      return [k, { requests: inc(s.requests, t.requests), agreement: inc(s.agreement, t.agreement) }];
    }),
  );
  return { versions, shadow, accuracy: new Map(now.accuracy), unreachable: now.unreachable };
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly inside its bucket as
 * Prometheus' histogram_quantile() does; seconds. Undefined without observations.
 */
export function histogramQuantile(buckets: ReadonlyMap<number, number>, q: number): number | undefined {
  if (!(q >= 0 && q <= 1)) throw new InflowError('INVALID_ARGUMENT', `quantile ${q}: expected 0..1`);
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      // The +Inf bucket has no upper bound: the highest finite bound is the best answer.
      if (le === Number.POSITIVE_INFINITY) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(count - prevCount, 1e-12));
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
