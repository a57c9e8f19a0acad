import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { monitorMain } from './monitor-command.ts';

describe('inflow monitor', () => {
  it('refuses a monitor file with an unknown key or a bad window, naming the field (exit 2)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-monitor-cli-'));
    const file = join(dir, 'monitor.yaml');
    await writeFile(file, 'predictionLog: p\nmodelRepository: /tmp\nwindowMs: 0\nthreshold: 3\n');
    const written: string[] = [];
    const write = t.mock.method(process.stderr, 'write', (chunk: unknown) => written.push(String(chunk)) > 0);
    assert.equal(await monitorMain([file, '--kafka', '127.0.0.1:1'], () => undefined), 2);
    write.mock.restore();
    assert.match(written.join(''), /windowMs: Too small/);
    assert.match(written.join(''), /threshold/);
  });

  it('refuses an accuracy block with an unknown task, naming the field (exit 2)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-monitor-cli-'));
    const file = join(dir, 'monitor.yaml');
    await writeFile(file, 'predictionLog: p\nmodelRepository: /tmp\naccuracy: { labelsTopic: l, task: ranking }\n');
    const written: string[] = [];
    const write = t.mock.method(process.stderr, 'write', (chunk: unknown) => written.push(String(chunk)) > 0);
    assert.equal(await monitorMain([file, '--kafka', '127.0.0.1:1'], () => undefined), 2);
    write.mock.restore();
    assert.match(written.join(''), /accuracy\.task/);
  });
});
