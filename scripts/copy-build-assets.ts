/**
 * Copies the files the compiled code reads at run time from src/ into dist/ at the same paths
 * (tsc emits only JavaScript): the .proto files, the dashboard page, the broker's and the Schema Registry's Maven files, the broker's log4j
 * files. Part of `npm run build`, which `npm pack` runs (prepack).
 *
 *   node scripts/copy-build-assets.ts [--out dist]
 */
import { cpSync, globSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'dist') } } });

/** Patterns under src/ (fixtures, docs and generator inputs stay behind). */
const ASSETS = ['protocol/**/*.proto', 'server/dashboard/dashboard.html', 'kafka/broker/pom.xml', 'kafka/broker/log4j2.properties', 'kafka/schema-registry/pom.xml', 'cli/models-import.py', 'cli/models-import-requirements.txt'];

let copied = 0;
for (const file of globSync(ASSETS, { cwd: join(ROOT, 'src') })) {
  cpSync(join(ROOT, 'src', file), join(values.out, file), { force: true });
  copied += 1;
}
if (copied === 0) throw new Error('no assets found under src/: was this run from the repository?');
process.stdout.write(`copied ${copied} asset files into ${values.out}\n`);
