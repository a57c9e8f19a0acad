import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStreamsMetrics } from '../streams/index.ts';
import { createStatus } from './stream-command.ts';

describe('the status line of inflow stream', () => {
  it('gives the final line the mean rate over the whole run, not over the last microseconds', async () => {
    const metrics = createStreamsMetrics();
    let now = 0;
    const status = createStatus(metrics, 'app-dlq', () => now);
    metrics.recordsIn.inc({ pipeline: 'app' }, 5961);
    now = 10_000;
    assert.match(await status(), /^in 5961 \(596\/s\)/);
    // Right after a status line (as when the pipeline fails): the whole run, not 5961 in 1 ms.
    now = 10_001;
    assert.match(await status(true), /^in 5961 \(596\/s over 10 s\)/);
  });

  it('prints no rate for under a second of data', async () => {
    const metrics = createStreamsMetrics();
    let now = 0;
    const status = createStatus(metrics, 'app-dlq', () => now);
    metrics.recordsIn.inc({ pipeline: 'app' }, 5961);
    now = 1;
    assert.match(await status(true), /^in 5961 \(-\/s\)/);
  });
});
