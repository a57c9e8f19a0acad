/**
 * What grew between two V8 heap snapshots (from `memory-probe.ts`'s SIGUSR2, or DevTools): self
 * size and count per node type and constructor name, the largest growths first.
 *
 *   node bench/soak/heap-diff.ts <earlier.heapsnapshot> <later.heapsnapshot> [--top 25]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

async function totals(file: string): Promise<Map<string, { count: number; bytes: number }>> {
  const s = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt] as number] ?? '?';
    const raw =
      type === 'string' || type === 'concatenated string' || type === 'sliced string'
        ? ''
        : (s.strings[s.nodes[i + nameAt] as number] ?? '');
    const key = `${type}: ${raw.slice(0, 80)}`;
    const t = out.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += s.nodes[i + sizeAt] as number;
    out.set(key, t);
  }
  return out;
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
const [a, b] = positionals;
if (a === undefined || b === undefined) throw new Error('usage: heap-diff.ts <earlier.heapsnapshot> <later.heapsnapshot>');
const [before, after] = [await totals(a), await totals(b)];
const rows = [...after].map(([key, t]) => {
  const o = before.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: t.count - o.count, bytes: t.bytes - o.bytes };
});
rows.sort((x, y) => y.bytes - x.bytes);
for (const r of rows.slice(0, Number(values.top)))
  console.log(`${String(r.bytes).padStart(10)} B  ${String(r.count).padStart(8)}  ${r.key}`);
