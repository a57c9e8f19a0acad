import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePrometheusText } from './prometheus-text.ts';
import { binomialUpperTail, countAbove, evaluateGuards, guardOptionsSchema } from './rollout-guards.ts';
import { addExposition, histogramQuantile, type SignalSnapshot, signalDelta } from './rollout-signals.ts';
import { stepRouting } from './rollout-runner.ts';

const empty = (): SignalSnapshot => ({ versions: new Map(), shadow: new Map(), accuracy: new Map(), unreachable: [] });

function exposition(
  v: { version: number; ok: number; failed: number; fast: number; slow: number }[],
  shadow?: { requests: number; agreement: number },
): string {
  const lines: string[] = ['# HELP inflow_inference_request_success_total Inference requests answered'];
  for (const x of v) {
    lines.push(`inflow_inference_request_success_total{model="m",version="${x.version}"} ${x.ok}`);
    lines.push(`inflow_inference_request_failure_total{model="m",version="${x.version}",code="INTERNAL"} ${x.failed}`);
    lines.push(`inflow_inference_request_duration_seconds_bucket{le="0.01",model="m",version="${x.version}"} ${x.fast}`);
    lines.push(`inflow_inference_request_duration_seconds_bucket{le="0.1",model="m",version="${x.version}"} ${x.fast + x.slow}`);
    lines.push(`inflow_inference_request_duration_seconds_bucket{le="+Inf",model="m",version="${x.version}"} ${x.fast + x.slow}`);
    lines.push(`inflow_inference_request_success_total{model="other",version="${x.version}"} 99999`);
  }
  if (shadow) {
    lines.push(`inflow_shadow_requests_total{model="m",version="1",shadow_version="2"} ${shadow.requests}`);
    lines.push(`inflow_shadow_agreement_total{model="m",version="1",shadow_version="2"} ${shadow.agreement}`);
  }
  return lines.join('\n');
}

function snapshot(text: string): SignalSnapshot {
  const s = empty();
  addExposition(s, text, 'm');
  return s;
}

describe('rollout guards', () => {
  const options = guardOptionsSchema.parse({ minSamples: 100, minAgreement: 0.9 });

  it('parses label values with escapes and +Inf buckets', () => {
    const [s] = parsePrometheusText('x_bucket{le="+Inf",a="q\\"uote\\\\"} 3 1700000000000');
    assert.deepEqual(s, { name: 'x_bucket', labels: { le: '+Inf', a: 'q"uote\\' }, value: 3 });
  });

  it('interpolates p99 inside its histogram bucket as histogram_quantile() does', () => {
    const p99 = histogramQuantile(
      new Map([
        [0.01, 90],
        [0.1, 100],
        [Number.POSITIVE_INFINITY, 100],
      ]),
      0.99,
    );
    assert.ok(p99 !== undefined && Math.abs(p99 - (0.01 + 0.09 * 0.9)) < 1e-12);
  });

  it('looks only at what happened since the step began, and passes a healthy version', () => {
    const before = snapshot(
      exposition(
        [
          { version: 1, ok: 1000, failed: 50, fast: 1050, slow: 0 },
          { version: 2, ok: 0, failed: 0, fast: 0, slow: 0 },
        ],
        { requests: 0, agreement: 0 },
      ),
    );
    const now = snapshot(
      exposition(
        [
          { version: 1, ok: 1400, failed: 50, fast: 1450, slow: 0 },
          { version: 2, ok: 200, failed: 1, fast: 201, slow: 0 },
        ],
        { requests: 150, agreement: 149 },
      ),
    );
    const results = evaluateGuards(signalDelta(now, before), 1, 2, options, []);
    assert.deepEqual(
      results.map((r) => [r.guard, r.status]),
      [
        ['error-rate', 'pass'],
        ['latency-p99', 'pass'],
        ['shadow-agreement', 'pass'],
        ['drift', 'pass'],
      ],
    );
  });

  it('fails on errors, slow answers, disagreement and drift alerts, each with its numbers', () => {
    const now = snapshot(
      exposition(
        [
          { version: 1, ok: 400, failed: 0, fast: 400, slow: 0 },
          { version: 2, ok: 180, failed: 20, fast: 100, slow: 100 },
        ],
        { requests: 150, agreement: 30 },
      ),
    );
    const drift = [
      { kind: 'drift', model: 'm', version: 2, at: '2026-01-01T00:00:00Z', feature: 'input[3]', statistic: 'psi', value: 0.4 },
    ];
    const byGuard = new Map(evaluateGuards(signalDelta(now, empty()), 1, 2, options, drift).map((r) => [r.guard, r]));
    assert.equal(byGuard.get('error-rate')?.detail, 'version 2 failed 20 of 200 requests (10.00 %; at most 1.00 %)');
    assert.equal(byGuard.get('latency-p99')?.status, 'fail');
    assert.equal(
      byGuard.get('shadow-agreement')?.detail,
      'version 2 agreed with version 1 on 30 of 150 shadowed requests (20.00 %; at least 90.00 %)',
    );
    assert.match(byGuard.get('drift')?.detail ?? '', /^1 drift alert\(s\) for version 2, first: "input\[3\]" "psi" = 0\.4/);
    assert.ok([...byGuard.values()].every((r) => r.status === 'fail'));
  });

  it('holds (insufficient) instead of deciding on too few samples, and says what is missing', () => {
    const now = snapshot(exposition([{ version: 2, ok: 10, failed: 5, fast: 15, slow: 0 }], { requests: 3, agreement: 0 }));
    const results = evaluateGuards(signalDelta(now, empty()), 1, 2, options, []);
    assert.deepEqual(
      results.filter((r) => r.status === 'insufficient').map((r) => r.guard),
      ['error-rate', 'latency-p99', 'shadow-agreement'],
    );
    assert.equal(results[0]?.detail, 'version 2 answered 15 of the 100 requests needed');
  });

  it('a counter reset (an endpoint restarted) counts from zero instead of going negative', () => {
    const before = snapshot(exposition([{ version: 2, ok: 500, failed: 0, fast: 500, slow: 0 }]));
    const now = snapshot(exposition([{ version: 2, ok: 120, failed: 0, fast: 120, slow: 0 }]));
    assert.equal(signalDelta(now, before).versions.get(2)?.success, 120);
  });

  it('each step splits traffic between baseline and target and shadows the target below 100 %', () => {
    assert.deepEqual(stepRouting(1, 2, 25, 0.2), {
      split: [
        { version: 1, weight: 75 },
        { version: 2, weight: 25 },
      ],
      shadow: { version: 2, fraction: 0.2 },
    });
    assert.deepEqual(stepRouting(1, 2, 100, 0.2), { split: [{ version: 2, weight: 100 }] });
  });

  it('holds instead of failing when a p99 over the limit rests on one slow request of a few dozen (a stall on a loaded host)', () => {
    const now = snapshot(
      exposition([
        { version: 1, ok: 100, failed: 0, fast: 100, slow: 0 },
        { version: 2, ok: 30, failed: 0, fast: 29, slow: 1 },
      ]),
    );
    const latency = evaluateGuards(signalDelta(now, empty()), 1, 2, { ...options, minSamples: 30 }, []).find(
      (r) => r.guard === 'latency-p99',
    );
    assert.equal(latency?.status, 'insufficient', latency?.detail);
    assert.match(
      latency?.detail ?? '',
      /^version 2 p99 \d+\.\d+ ms \(at most 19\.80 ms; baseline 9\.90 ms\): only 1 of 30 requests slower than 19\.80 ms, p = 0\.26 against a p99 at the limit, not yet below 0\.000001$/,
    );
  });

  it('fails a version that is slower on every request after a handful of requests, with the evidence', () => {
    const now = snapshot(
      exposition([
        { version: 1, ok: 100, failed: 0, fast: 100, slow: 0 },
        { version: 2, ok: 10, failed: 0, fast: 0, slow: 10 },
      ]),
    );
    const latency = evaluateGuards(signalDelta(now, empty()), 1, 2, { ...options, minSamples: 10 }, []).find(
      (r) => r.guard === 'latency-p99',
    );
    assert.equal(latency?.status, 'fail', latency?.detail);
    assert.match(latency?.detail ?? '', /: 9 of 10 requests slower than 19\.80 ms, p = \d\.\de-1\d against a p99 at the limit$/);
  });

  it('counts the observations above a limit inside its bucket, as histogram_quantile() interpolates', () => {
    const buckets = new Map([
      [0.01, 90],
      [0.1, 100],
      [Number.POSITIVE_INFINITY, 104],
    ]);
    assert.equal(countAbove(buckets, 0.005), 104 - 45);
    assert.ok(Math.abs(countAbove(buckets, 0.055) - 9) < 1e-9);
    assert.equal(countAbove(buckets, 5), 4);
  });

  it('binomial upper tail: equal to the exact sum', () => {
    const exact = (k: number, n: number, p: number) => {
      let sum = 0;
      let c = 1;
      for (let i = 0; i <= n; i++) {
        if (i >= k) sum += c * p ** i * (1 - p) ** (n - i);
        c = (c * (n - i)) / (i + 1);
      }
      return sum;
    };
    for (const [k, n] of [
      [1, 30],
      [2, 30],
      [4, 30],
      [10, 10],
      [3, 200],
      [0, 5],
    ] as const) {
      const got = binomialUpperTail(k, n, 0.01);
      const want = exact(k, n, 0.01);
      assert.ok(Math.abs(got - want) <= 1e-12 + 1e-9 * want, `k=${k} n=${n}: ${got} vs ${want}`);
    }
  });
});
