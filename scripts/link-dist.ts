/**
 * `npm ci`/`npm install` in the repository (the `prepare` script): points every entry of the
 * package's `exports` (dist/…js) at its TypeScript source, so `import … from 'inflow/kafka'` works
 * in a clone without a build and always runs the current sources (Node strips the types of files
 * outside node_modules). `npm pack`/`npm publish` skip this: their `prepack` builds the real dist/.
 *
 *   node scripts/link-dist.ts
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
// npm sets npm_command for lifecycle scripts; `prepare` also runs during pack and publish.
if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') process.exit(0);

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, { types: string; default: string }>;
};
execFileSync(process.execPath, [join(ROOT, 'scripts', 'clean-dist.ts')], { stdio: 'ignore' });
let linked = 0;
for (const [entry, { default: target, types }] of Object.entries(manifest.exports)) {
  const source = join(ROOT, target.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
  if (!existsSync(source)) throw new Error(`exports["${entry}"]: no source ${relative(ROOT, source)} for ${target}`);
  for (const file of [target, types]) {
    const path = join(ROOT, file);
    mkdirSync(dirname(path), { recursive: true });
    const from = relative(dirname(path), source);
    writeFileSync(path, `// Written by scripts/link-dist.ts (npm ci): the sources, until \`npm run build\`.\nexport * from '${from.startsWith('.') ? from : `./${from}`}';\n`);
  }
  linked += 1;
}
process.stdout.write(`dist/: ${linked} package entry points linked to src/ (npm run build emits the JavaScript)\n`);
