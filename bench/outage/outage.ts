/**
 * Broker outages under a running pipeline, on a broker of the script's own: for each outage
 * length × guarantee, the digits pipeline loses its broker mid-stream, the broker comes back
 * on the same data, and a read_committed reader counts the outputs. Prints one table row per
 * run: outputs expected / seen / duplicated, and the time from the broker's return to the
 * pipeline's first new output.
 *
 *   node bench/outage/outage.ts                 # 10 s, 60 s and 5 min, both guarantees (~15 min)
 *   node bench/outage/outage.ts 10 60           # chosen lengths, seconds
 *   GUARANTEES=exactly-once node bench/outage/outage.ts 10
 *   MEMBERSHIP=static node bench/outage/outage.ts 10   # the pipeline as a static group member (KIP-345)
 *
 * Needs Java 17+ (the broker); runs its own broker, never one named by KAFKA_BOOTSTRAP_SERVERS.
 */
import type { Guarantee } from '../../src/streams/index.ts';
import { type OutageResult, runOutage } from '../../test/kafka/fixtures/outage-scenario.ts';

const lengths = (process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['10', '60', '300']).map((s) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`outage lengths are seconds > 0, got "${s}"`);
  return n;
});
const guarantees = (process.env.GUARANTEES ?? 'exactly-once,at-least-once').split(',') as Guarantee[];
const count = Number(process.env.COUNT ?? 10_000);
const memberships = (process.env.MEMBERSHIP ?? 'dynamic').split(',');
for (const m of memberships)
  if (m !== 'static' && m !== 'dynamic') throw new Error(`MEMBERSHIP is static, dynamic or both (comma-separated), got "${m}"`);

const rows: (OutageResult & { membership: string })[] = [];
for (const seconds of lengths) {
  for (const guarantee of guarantees) {
    for (const membership of memberships) {
      const staticMembership = membership === 'static';
      const result = await runOutage({
        guarantee,
        outageMs: seconds * 1000,
        count,
        staticMembership,
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      rows.push({ ...result, membership });
      if (result.failure || result.missing > 0) process.stderr.write(`warnings:\n  ${result.warnings.join('\n  ')}\n`);
      process.stderr.write(`state lines: ${JSON.stringify(result.stateLines)}\n`);
    }
  }
}

const header = [
  'outage',
  'guarantee',
  'membership',
  'expected',
  'seen',
  'missing',
  'duplicated',
  'resume (ms)',
  'connected (ms)',
  'assigned (ms)',
  'state lines',
  'exited',
];
const table = rows.map((r) => [
  `${r.outageMs / 1000} s`,
  r.guarantee,
  r.membership,
  String(r.expected),
  String(r.seen),
  String(r.missing),
  String(r.duplicated),
  String(r.resumeMs),
  String(r.reconnectMs),
  String(r.assignedMs),
  String(r.stateLines.length),
  r.failure ? `yes: ${r.failure}` : 'no',
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${table.map(line).join('\n')}\n`);
process.exit(rows.some((r) => r.failure || r.missing > 0 || (r.guarantee === 'exactly-once' && r.duplicated > 0)) ? 1 : 0);
