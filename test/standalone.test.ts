/**
 * The repository stands alone for its users: no tracked file links or cites what lies outside it —
 * a sibling folder of the checkout or a path of the machine it was written on. Architecture
 * documentation lives in docs/.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
// Built from parts so this file does not match itself.
const OUTSIDE = new RegExp(['\\.\\./', 'shared', '|', '/', 'work', '/'].join(''));

describe('the repository', () => {
  it('references no path outside itself in any tracked file', async () => {
    const { stdout } = await run('git', ['ls-files', '-z'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const files = stdout.split('\0').filter(Boolean);
    assert.ok(files.length > 100, `git ls-files listed ${files.length} files`);
    const found: string[] = [];
    for (const file of files) {
      const text = await readFile(join(ROOT, file), 'utf8').catch(() => '');
      if (text.includes('\0')) continue; // binary (models, images)
      text.split('\n').forEach((line, i) => {
        if (OUTSIDE.test(line)) found.push(`${file}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
    }
    assert.deepEqual(found, [], 'link the document inside the repository (docs/architecture.md) instead');
  });

  it('keeps the architecture document the README links to', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, /\(docs\/architecture\.md\)/);
    assert.match(await readFile(join(ROOT, 'docs', 'architecture.md'), 'utf8'), /^# inflow — architecture$/m);
  });
});
