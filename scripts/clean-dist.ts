/**
 * Empties dist/ before `npm run build` so the package never carries JavaScript of modules that
 * no longer exist; dist/edge-sea (the edge build's cached tools and binaries) stays.
 *
 *   node scripts/clean-dist.ts [--out dist]
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(import.meta.dirname, '..', 'dist') } } });
const KEEP = new Set(['edge-sea']);

let removed = 0;
const entries = existsSync(values.out) ? readdirSync(values.out, { withFileTypes: true }) : [];
for (const entry of entries.filter((e) => !KEEP.has(e.name))) {
  rmSync(join(values.out, entry.name), { recursive: true, force: true });
  removed += 1;
}
process.stdout.write(`removed ${removed} entries from ${values.out}\n`);
