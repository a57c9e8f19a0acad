/**
 * Entry of the single-executable edge agent (bundled by build-sea.sh into app/edge.js, loaded by
 * sea-main.cjs from the folder it extracted next to the executable). Arguments as `inflow edge`:
 * `inflow-edge <agent.yaml> [--kafka servers] [--dry-run]`. Only the edge command is in the
 * bundle, so it does not go through src/cli/main.ts (whose lazy imports would pull in every command).
 */
import { parseArgs } from 'node:util';
import { edgeCommand, edgeHelp } from '../../src/cli/edge-command.ts';
import { InflowError } from '../../src/errors.ts';

/** Runs the agent; resolves with the process exit code (the same rule as src/cli/main.ts's exitCodeFor). */
export async function run(argv: string[], info: { version: string; home: string; models: string }): Promise<number> {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        kafka: { type: 'string' },
        'dry-run': { type: 'boolean' },
        verbose: { type: 'boolean' },
      },
    });
    if (values.version) {
      out(`inflow-edge ${info.version} (node ${process.versions.node} ${process.arch}); runtime in ${info.home}; models in ${info.models}`);
      return 0;
    }
    if (values.help || positionals.length === 0) {
      out(edgeHelp.replaceAll('inflow edge', 'inflow-edge'));
      return values.help ? 0 : 2;
    }
    await edgeCommand({ file: positionals[0], kafka: values.kafka, dryRun: values['dry-run'] }, out);
    return 0;
  } catch (error) {
    const e = InflowError.from(error, 'INVALID_ARGUMENT');
    process.stderr.write(`inflow-edge: ${e.message}\n`);
    if (e.httpStatus >= 400 && e.httpStatus < 500) return 2;
    return e.retriable ? 3 : 1;
  }
}
