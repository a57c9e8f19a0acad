#!/usr/bin/env node
// Entry of the `inflow` command (Node >= 22.22 runs the TypeScript sources directly).
import { main } from '../src/cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
