import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDashboardHistory } from './dashboard-history.ts';
import type { DashboardSnapshot } from './dashboard-state.ts';

describe('dashboard history', () => {
  it('keeps the last `capacity` snapshots, oldest first, sampling on its timer until stopped', async () => {
    let tick: (() => void) | undefined;
    let cleared = false;
    let n = 0;
    const history = createDashboardHistory({
      sample: async () => ({ time: ++n }) as unknown as DashboardSnapshot,
      capacity: 3,
      setInterval: (fn) => {
        tick = fn;
        return {};
      },
      clearInterval: () => {
        cleared = true;
      },
    });
    await history.sampleNow(); // the first sample (taken at creation) has settled by now or runs beside this one
    for (let i = 0; i < 5; i++) {
      tick?.();
      await history.sampleNow();
    }
    const times = history.snapshots().map((s) => s.time);
    assert.equal(times.length, 3, 'bounded by capacity');
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'oldest first',
    );
    assert.equal(times.at(-1), n, 'ends with the newest');
    history.stop();
    assert.equal(cleared, true);
  });

  it('skips a failed sample instead of failing', async () => {
    let fail = true;
    const history = createDashboardHistory({
      sample: async () => {
        if (fail) throw new Error('registry broke');
        return { time: 1 } as unknown as DashboardSnapshot;
      },
      setInterval: () => ({}),
      clearInterval: () => undefined,
    });
    await history.sampleNow();
    fail = false;
    await history.sampleNow();
    assert.deepEqual(
      history.snapshots().map((s) => s.time),
      [1],
    );
  });
});
