#!/usr/bin/env node
// Entry of the `inflow` command. In the repository, Node (>= 22.22) runs the TypeScript sources
// directly; an installed package has no src/ (Node does not strip types under node_modules) and
// runs the JavaScript `npm pack` built into dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(existsSync(source) ? source.href : new URL('../dist/cli/main.js', import.meta.url).href);

process.exitCode = await main(process.argv.slice(2));
