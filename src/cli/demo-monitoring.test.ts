import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { demoCommand } from './demo-command.ts';
import { shiftRight } from './demo-monitoring-setup.ts';

interface Summary {
  events: number;
  shiftTime: number;
  before: { accuracy: number; window: { end: number } };
  after: { accuracy: number; window: { start: number } };
  driftAlerts: Array<{ version: number; window: { start: number; end: number }; feature: string; statistic: string }>;
  driftReportsBeforeShift: Array<{ version: number; alerts: number; unavailable?: string }>;
  rollbacks: Array<{ version: number; reason: string }>;
  worse: { status: string; percent: number; reason: string; failed: Array<{ guard: string; detail: string }>; exitCode: number };
  better: { status: string; steps: number[]; exitCode: number };
  final: { accuracy: number };
  routing: { split: Array<{ version: number; weight: number }> };
  dashboardMonitoring: { accuracy: Record<string, number>; alertsTotal: Record<string, number>; alerts: Array<{ kind: string }> };
}

describe('inflow demo --scene monitoring', () => {
  it('moves an image one pixel to the right, blanking the left column', () => {
    const image = Array.from({ length: 64 }, (_, i) => i % 17);
    const moved = shiftRight(image);
    for (let r = 0; r < 8; r++) {
      assert.equal(moved[r * 8], 0);
      for (let c = 1; c < 8; c++) assert.equal(moved[r * 8 + c], image[r * 8 + c - 1]);
    }
  });

  it('shows the shift in drift and live accuracy, rolls the broken version back by its accuracy guard and promotes the retrained one', async () => {
    const lines: string[] = [];
    await demoCommand({ scene: 'monitoring', json: true, restPort: '0', rate: '2000' }, (line) => lines.push(line));
    const s = JSON.parse(lines.at(-1) ?? '{}') as Summary;

    // Drift: windows before the shift were compared with version 1's profile and raised nothing; alerts came after.
    assert.ok(s.driftReportsBeforeShift.length >= 2, `drift windows before the shift: ${s.driftReportsBeforeShift.length}`);
    for (const r of s.driftReportsBeforeShift) assert.deepEqual([r.alerts, r.unavailable], [0, undefined]);
    const v1 = s.driftAlerts.filter((a) => a.version === 1);
    assert.ok(v1.length > 0, 'version 1 raised drift alerts');
    for (const a of v1) assert.ok(a.window.start >= s.shiftTime, `alert ${a.feature} ${a.statistic} in a window before the shift`);
    assert.deepEqual(
      s.driftAlerts.filter((a) => a.version === 3),
      [],
      'the retrained version drifts from nothing: its profile is of the moved images',
    );

    // Live accuracy from the late labels: version 1 before and after, version 3 after its promotion.
    assert.ok(s.before.window.end <= s.shiftTime && s.after.window.start >= s.shiftTime);
    assert.ok(s.before.accuracy > 0.9, `before ${s.before.accuracy}`);
    assert.ok(s.after.accuracy < 0.7, `after ${s.after.accuracy}`);
    assert.ok(s.final.accuracy > 0.9, `version 3 ${s.final.accuracy}`);

    // The broken version: rolled back at its first step, the reason naming the failed guard, on the alerts topic too.
    assert.equal(s.worse.status, 'rolled-back');
    assert.equal(s.worse.exitCode, 1);
    assert.equal(s.worse.percent, 25);
    assert.deepEqual(
      s.worse.failed.map((f) => f.guard),
      ['live-accuracy'],
    );
    assert.match(s.worse.reason, /^live-accuracy: live accuracy of version 2 \d+\.\d+ % vs \d+\.\d+ % of version 1/);
    assert.deepEqual(s.rollbacks, [{ version: 2, reason: s.worse.reason }]);

    // The retrained version: every step, then 100 % on the models topic.
    assert.deepEqual([s.better.status, s.better.exitCode, s.better.steps], ['promoted', 0, [25, 50, 100]]);
    assert.deepEqual(s.routing.split, [{ version: 3, weight: 100 }]);

    // The dashboard's monitoring panels carried the monitor's numbers.
    const d = s.dashboardMonitoring;
    assert.ok(
      ['digits-mlp v1', 'digits-mlp v2', 'digits-mlp v3'].every((k) => typeof d.accuracy[k] === 'number'),
      JSON.stringify(d.accuracy),
    );
    assert.ok((d.alertsTotal['digits-mlp v1'] ?? 0) >= v1.length);
    assert.ok(d.alerts.some((a) => a.kind === 'rollback'));
  });

  it('refuses --avro and a rate out of range, saying what is expected', async () => {
    await assert.rejects(
      demoCommand({ scene: 'monitoring', avro: true }, () => undefined),
      {
        code: 'INVALID_ARGUMENT',
        message: /--avro applies to --scene card-payments/,
      },
    );
    await assert.rejects(
      demoCommand({ scene: 'monitoring', rate: '5' }, () => undefined),
      {
        code: 'INVALID_ARGUMENT',
        message: /--rate must be an integer 50-100000/,
      },
    );
  });
});
