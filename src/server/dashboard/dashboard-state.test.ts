import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { createInferenceMetrics } from '../../observability/metrics.ts';
import type { LocalInference } from '../../serving/local-inference.ts';
import { createStreamsMetrics } from '../../streams/runtime/streams-metrics.ts';
import { dashboardSnapshot, histogram } from './dashboard-state.ts';

describe('dashboard snapshot', () => {
  it('sums a histogram over its label sets, bucket by bucket', async () => {
    const registry = new Registry();
    const h = new Histogram({ name: 'h', help: 'h', labelNames: ['model'], buckets: [1, 10], registers: [registry] });
    h.observe({ model: 'a' }, 0.5);
    h.observe({ model: 'b' }, 5);
    h.observe({ model: 'b' }, 50);
    const metrics = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, m.values as never]));
    assert.deepEqual(histogram(metrics, 'h'), { le: [1, 10], counts: [1, 2], sum: 55.5, count: 3 });
  });

  it('shows models with versions, labels and routing, the server counters by version, and each pipeline', async () => {
    const metrics = createInferenceMetrics();
    metrics.requestSuccess.inc({ model: 'digits', version: '1' }, 9);
    metrics.requestSuccess.inc({ model: 'digits', version: '2' }, 1);
    metrics.shadowRequests.inc({ model: 'digits', version: '1', shadow_version: '2' }, 4);
    metrics.shadowAgreement.inc({ model: 'digits', version: '1', shadow_version: '2' }, 3);
    metrics.shadowDuration.observe({ model: 'digits', version: '1', shadow_version: '2' }, 0.001);
    const inference = {
      metrics,
      repository: {
        models: () => ['digits'],
        status: () => ({
          name: 'digits',
          config: { labels: { stable: 1 } },
          versions: [
            { version: 1, state: 'AVAILABLE' },
            { version: 2, state: 'LOADING' },
          ],
        }),
      },
      router: {
        state: () => ({ ready: [1], labels: { stable: 1 }, split: [{ version: 1, weight: 100 }], shadow: { version: 2, fraction: 0.5 } }),
      },
    } as unknown as LocalInference;
    const pipeline = createStreamsMetrics();
    pipeline.recordsIn.inc({ pipeline: 'p' }, 5);
    pipeline.deadLettered.inc({ pipeline: 'p', stage: 'predict', code: 'INVALID_ARGUMENT' }, 2);
    pipeline.consumerLag.set({ pipeline: 'p', topic: 't', partition: '0' }, 3);
    pipeline.consumerLag.set({ pipeline: 'p', topic: 't', partition: '1' }, 4);
    const s = await dashboardSnapshot(
      inference,
      { pipelines: () => [{ name: 'p', registry: pipeline.registry, status: () => ({ state: 'running', inFlight: 1 }) }] },
      true,
    );
    assert.equal(s.admin, true);
    assert.deepEqual(s.models, [
      {
        name: 'digits',
        versions: [
          { version: 1, state: 'AVAILABLE' },
          { version: 2, state: 'LOADING' },
        ],
        labels: { stable: 1 },
        split: [{ version: 1, weight: 100 }],
        shadow: { version: 2, fraction: 0.5 },
      },
    ]);
    assert.deepEqual(
      [s.server.success, s.server.byVersion, s.server.shadow],
      [10, { 'digits v1': 9, 'digits v2': 1 }, { requests: 4, compared: 1, agreement: 3, failures: 0 }],
    );
    const p = s.pipelines[0];
    assert.deepEqual([p?.name, p?.state, p?.inFlight, p?.recordsIn, p?.deadLettered, p?.lag], ['p', 'running', 1, 5, 2, 7]);
  });
});
