#!/usr/bin/env node
// Entry of the `inflow` command. In the repository, Node (>= 22.22) runs the TypeScript sources
// directly; an installed package has no src/ (Node does not strip types under node_modules) and
// runs the JavaScript `npm pack` built into dist/.
import { existsSync } from 'node:fs';
import { enableCompileCache } from 'node:module';

// Older Node fails later with ERR_UNKNOWN_FILE_EXTENSION (no type stripping) or a missing API:
// say what to install instead. In the repository `npm start`/`npx inflow` run the Node 24 that
// `npm ci` installs (the `node` devDependency), whatever the shell's `node` is.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 22)) {
  process.stderr.write(
    `inflow: needs Node.js >= 22.22, this is v${process.versions.node}; run it through npm (npm start, npx inflow …) in the repository, or install Node 24: npm i -g --prefix "$HOME/.node24" node@24 and put "$HOME/.node24/bin" first on PATH\n`,
  );
  process.exit(3);
}

// V8's code cache on disk (node:module compile cache, under the OS temp dir, keyed by Node version
// and file content): the CLI imports ~1,000 modules, and caching their compilation cut its start
// from 1.39 to 0.85 s CPU. Where the directory is not writable it stays off and says nothing.
enableCompileCache();

const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(existsSync(source) ? source.href : new URL('../dist/cli/main.js', import.meta.url).href);

process.exitCode = await main(process.argv.slice(2));
