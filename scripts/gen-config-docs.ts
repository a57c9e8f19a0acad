/**
 * Writes docs/config-reference.md from the zod schemas of model config.yaml, pipeline files and
 * the `kafka:` section (see src/cli/config-reference.ts). `--check` only compares: exit code 1
 * when the committed file is stale.
 *
 *   node scripts/gen-config-docs.ts           # regenerate
 *   node scripts/gen-config-docs.ts --check   # CI-style check
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderConfigReference } from '../src/cli/config-reference.ts';

const target = join(import.meta.dirname, '..', 'docs', 'config-reference.md');
const text = await renderConfigReference();
if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => '');
  if (current !== text) {
    process.stderr.write(`${target} is stale: run node scripts/gen-config-docs.ts\n`);
    process.exitCode = 1;
  }
} else {
  await writeFile(target, text);
  process.stdout.write(`wrote ${target} (${text.length} characters)\n`);
}
