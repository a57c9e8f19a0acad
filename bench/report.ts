/**
 * Turns one benchmark run's JSON files (written by bench/run-all.ts into a results folder) into
 * `report.md` and SVG plots beside it: limits (onnxruntime-node session.run per model and batch;
 * Kafka's own perf tools vs inflow's client), model servers (inflow vs MLServer, Triton via
 * PyTriton, KServe: req/s, p50/p99, CPU s per 1 k requests, ratios inflow / peer with their spread
 * over reps, inflow / limit), stream processors (records/s, e2e latency, ratios).
 *
 *   node bench/report.ts <results folder>
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { barChart, lineChart, type Series } from './lib/svg-chart.ts';

// --- the shapes the benches write ------------------------------------------------------------------
interface OnnxLimit {
  model: string;
  results: Array<{ case: string; batch: number; callsPerSecond: number; rowsPerSecond: number; meanLatencyMicros: number }>;
}
interface KafkaLimit {
  records: number;
  recordBytes: number;
  results: { kafkaProduce: number[]; inflowProduce: number[]; kafkaConsume: number[]; inflowConsume: number[]; eos: number[] };
}
interface ServerCell {
  rep: number;
  server: string;
  model: string;
  transport: string;
  clients: number;
  rps: number;
  p50us: number;
  p99us: number;
  cdf: Array<[number, number]>;
  errors: number;
  cpuPer1k: number;
  load1: number;
}
interface Servers {
  seconds: number;
  reps: number;
  clients: number[];
  models: string[];
  serverCpus: string;
  loadCpus: string;
  tools: { wrk: string; ghz: string };
  cells: ServerCell[];
  failures: Array<{ rep: number; server: string; what: string; reason: string }>;
}
interface Phase {
  offered: number;
  sent: number;
  delivered: number;
  backlog: number;
  p50ms: number;
  p99ms: number;
  cdf: Array<[number, number]>;
}
interface StreamRun {
  system: string;
  model: string;
  guarantee: string;
  records: number;
  maxRate: number;
  cpuPer1k: number;
  half?: Phase;
  common?: Phase;
  load1: number;
  error?: string;
  firstError?: string;
  rep?: number;
}
interface Streams {
  records: number;
  latencySeconds: number;
  load: number;
  commonRate: number;
  reps?: number;
  partitions: number;
  java: string;
  runs: StreamRun[];
}
interface StatefulRun {
  system: string;
  guarantee: string;
  maxRate: number;
  cpuPer1k: number;
  loadMean: number;
  loadMax: number;
  outputs: number;
  records: number;
  wrongWindows: number;
  error?: string;
  rep?: number;
}
interface Stateful {
  records: number;
  keys: number;
  windowMs: number;
  partitions: number;
  reps: number;
  runs: StatefulRun[];
}
interface Env {
  mode: string;
  startedAt: string;
  wallSeconds: number;
  machine: Record<string, string>;
  versions: Record<string, string>;
  commands: string[];
  load: Array<{ at: string; step: string; load1: number }>;
}

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: node bench/report.ts <results folder>');
async function json<T>(name: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(join(dir as string, name), 'utf8')) as T;
  } catch {
    return undefined;
  }
}
const env = await json<Env>('env.json');
const onnx = (await json<OnnxLimit[]>('limits-onnx.json')) ?? [];
const kafka = await json<KafkaLimit>('limits-kafka.json');
const servers = await json<Servers>('servers.json');
const streams = await json<Streams>('streams.json');
const stateful = await json<Stateful>('stateful.json');
/** bench/streams/slo-throughput.ts --out. */
interface Slo {
  readonly model: string;
  readonly sloMs: number;
  readonly seconds: number;
  readonly rates: readonly number[];
  readonly commitIntervalMs: number;
  readonly results: ReadonlyArray<{
    readonly system: string;
    readonly guarantee: string;
    readonly sloRate: number;
    readonly error?: string;
    readonly steps: ReadonlyArray<{
      readonly offered: number;
      readonly p50ms: number;
      readonly p99ms: number;
      readonly held: boolean;
      readonly load1: number;
    }>;
  }>;
}
const slo = await json<Slo>('slo.json');

// --- helpers ------------------------------------------------------------------------------------------
const median = (xs: readonly number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const n0 = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—');
const n1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '—');
const n2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '—');
const ratio = (v: number): string => (Number.isFinite(v) ? `${v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(2)}×` : '—');
/** "1.8× (1.6–2.0)" from per-rep ratios. */
const spread = (rs: readonly number[]): string => {
  const ok = rs.filter(Number.isFinite);
  if (ok.length === 0) return '—';
  if (ok.length === 1) return ratio(ok[0] as number);
  return `${ratio(median(ok))} (${ratio(Math.min(...ok))}–${ratio(Math.max(...ok))})`;
};
const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
const out: string[] = [];
const svgs: Array<[string, string]> = [];
const plot = (name: string, svg: string, alt: string): void => {
  svgs.push([name, svg]);
  out.push(`![${alt}](${name})`, '');
};

out.push(`# Benchmark run — ${env?.mode ?? '?'} mode, ${env?.startedAt ?? '?'}`, '');
out.push('Generated by `node bench/report.ts` from the JSON files in this folder (written by `npm run bench`).', '');
if (env) {
  out.push('## Machine and versions', '');
  for (const [k, v] of Object.entries(env.machine)) out.push(`- ${k}: ${v}`);
  for (const [k, v] of Object.entries(env.versions)) out.push(`- ${k}: ${v}`);
  out.push(`- wall time of the run: ${n0(env.wallSeconds)} s`);
  out.push(
    `- 1-minute load average at each step: ${env.load.map((l) => `${l.step} ${l.load1.toFixed(1)}`).join(', ')} (other work shared the machine)`,
    '',
  );
  out.push('Commands:', '', '```', ...env.commands, '```', '');
}

// --- limits -------------------------------------------------------------------------------------------
const rawCalls = (model: string, batch: number): number =>
  onnx.find((o) => o.model === model)?.results.find((r) => r.case.startsWith('direct') && r.batch === batch)?.callsPerSecond ?? Number.NaN;
const rawRows = (model: string, batch: number): number =>
  onnx.find((o) => o.model === model)?.results.find((r) => r.case.startsWith('direct') && r.batch === batch)?.rowsPerSecond ?? Number.NaN;
if (onnx.length > 0) {
  out.push('## Limits: onnxruntime-node session.run', '');
  out.push(
    "One session per model, one intra-op thread, the main thread awaiting one call at a time (`direct`); `servable c=8` is inflow's worker-thread servable with 8 calls in flight. Rows/s:",
    '',
  );
  const batches = [...new Set(onnx.flatMap((o) => o.results.map((r) => r.batch)))].sort((a, b) => a - b);
  out.push(`| model | case | ${batches.map((b) => `batch ${b}`).join(' | ')} |`, `|---|---|${batches.map(() => '---:').join('|')}|`);
  for (const o of onnx) {
    for (const c of [...new Set(o.results.map((r) => r.case))]) {
      out.push(
        `| ${o.model} | ${c} | ${batches.map((b) => n0(o.results.find((r) => r.case === c && r.batch === b)?.rowsPerSecond ?? Number.NaN)).join(' | ')} |`,
      );
    }
  }
  out.push('');
  plot(
    'limits-onnx.svg',
    lineChart({
      title: 'onnxruntime-node session.run: rows/s vs batch size (1 intra-op thread)',
      xLabel: 'batch size (rows per call)',
      yLabel: 'rows/s',
      logX: true,
      logY: true,
      series: onnx.map((o) => ({
        name: o.model,
        points: o.results.filter((r) => r.case.startsWith('direct')).map((r) => [r.batch, r.rowsPerSecond] as const),
      })),
    }),
    'rows/s vs batch size per model',
  );
}
if (kafka) {
  const r = kafka.results;
  out.push("## Limits: Kafka on the project's broker", '');
  out.push(
    `${n0(kafka.records)} records of ${kafka.recordBytes} B, 3 partitions; medians over the rounds (every round in brackets). Kafka's tools are \`org.apache.kafka.tools.ProducerPerformance\` / \`ConsumerPerformance\` (kafka-tools 4.1.2).`,
    '',
    '| measurement | Kafka tool msgs/s | inflow client msgs/s | inflow / Kafka |',
    '|---|---:|---:|---:|',
    `| produce, acks=all, idempotent | ${n0(median(r.kafkaProduce))} (${r.kafkaProduce.map(n0).join(', ')}) | ${n0(median(r.inflowProduce))} (${r.inflowProduce.map(n0).join(', ')}) | ${ratio(median(r.inflowProduce) / median(r.kafkaProduce))} |`,
    `| consume, consumer group | ${n0(median(r.kafkaConsume))} (${r.kafkaConsume.map(n0).join(', ')}) | ${n0(median(r.inflowConsume))} (${r.inflowConsume.map(n0).join(', ')}) | ${ratio(median(r.inflowConsume) / median(r.kafkaConsume))} |`,
    `| exactly-once consume → produce (transactions) | — | ${n0(median(r.eos))} (${r.eos.map(n0).join(', ')}) | — |`,
    '',
  );
}

// --- model servers -------------------------------------------------------------------------------------
if (servers) {
  const cells = servers.cells;
  const serverNames = [...new Set(cells.map((c) => c.server))];
  const peers = serverNames.filter((s) => !s.startsWith('inflow'));
  const transports = [...new Set(cells.map((c) => c.transport))];
  const pick = (server: string, model: string, transport: string, clients: number): ServerCell[] =>
    cells.filter((c) => c.server === server && c.model === model && c.transport === transport && c.clients === clients);
  out.push('## Model servers', '');
  out.push(
    `Each server pinned to CPU ${servers.serverCpus}, the load generator (wrk -t1 for REST, ghz for gRPC) to CPU ${servers.loadCpus}; ${servers.seconds} s per cell after a 1 s warm-up; ${servers.reps} rep(s), servers in rotated order per rep; values are medians over reps. One row per request. CPU = the server's whole process tree (user + system) per 1 000 requests. ${servers.tools.wrk}; ${servers.tools.ghz}.`,
    '',
  );
  for (const model of servers.models) {
    out.push(`### ${model}`, '');
    out.push(
      '| transport | clients | server | req/s | p50 µs | p99 µs | CPU s / 1k req | errors | inflow / this (req/s) |',
      '|---|---:|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const t of transports) {
      for (const clients of servers.clients) {
        const inflowCells = pick('inflow', model, t, clients);
        for (const s of serverNames) {
          const cs = pick(s, model, t, clients);
          if (cs.length === 0) continue;
          const perRep = s === 'inflow' ? [] : cs.map((c) => (inflowCells.find((i) => i.rep === c.rep)?.rps ?? Number.NaN) / c.rps);
          out.push(
            `| ${t} | ${clients} | ${s} | ${n0(median(cs.map((c) => c.rps)))} | ${n0(median(cs.map((c) => c.p50us)))} | ${n0(median(cs.map((c) => c.p99us)))} | ${n2(median(cs.map((c) => c.cpuPer1k)))} | ${cs.reduce((a, c) => a + c.errors, 0)} | ${s === 'inflow' ? '' : spread(perRep)} |`,
          );
        }
      }
    }
    out.push('');
    // Throughput vs clients for the transports every server speaks; inflow's own transports on one more chart.
    for (const t of ['REST OIP JSON', 'gRPC OIP ModelInfer']) {
      plot(
        `servers-${slug(model)}-${slug(t)}-throughput.svg`,
        lineChart({
          title: `${model}, ${t}: req/s vs clients`,
          xLabel: 'concurrent clients',
          yLabel: 'requests/s',
          logX: true,
          series: serverNames.map((s) => ({
            name: s,
            points: servers.clients.map((c) => [c, median(pick(s, model, t, c).map((x) => x.rps))] as const),
          })),
        }),
        `${model} ${t} throughput vs clients`,
      );
    }
    plot(
      `servers-${slug(model)}-inflow-transports.svg`,
      lineChart({
        title: `${model}, inflow: req/s vs clients per transport`,
        xLabel: 'concurrent clients',
        yLabel: 'requests/s',
        logX: true,
        series: transports.map((t) => ({
          name: t,
          points: servers.clients.map((c) => [c, median(pick('inflow', model, t, c).map((x) => x.rps))] as const),
        })),
      }),
      `${model} inflow transports`,
    );
    const cdfClients = servers.clients.includes(16) ? 16 : (servers.clients.at(-1) ?? 1);
    plot(
      `servers-${slug(model)}-latency-cdf.svg`,
      lineChart({
        title: `${model}, REST OIP JSON, ${cdfClients} clients: latency CDF (rep 0)`,
        xLabel: 'latency µs',
        yLabel: 'percentile',
        logX: true,
        series: serverNames.map(
          (s): Series => ({
            name: s,
            points: (pick(s, model, 'REST OIP JSON', cdfClients)[0]?.cdf ?? []).map(([p, us]) => [us, p] as const),
          }),
        ),
      }),
      `${model} latency CDF`,
    );
  }
  // Ratio summary: inflow / peer on the same transport, and inflow / limit.
  for (const variant of serverNames.filter((s) => s.startsWith('inflow'))) {
    out.push(`### Ratios: ${variant} / peer, same model, transport and clients (req/s; median over reps, spread in brackets)`, '');
    out.push(
      `| model | transport | clients | ${peers.map((p) => `${variant} / ${p}`).join(' | ')} |`,
      `|---|---|---:|${peers.map(() => '---:').join('|')}|`,
    );
    for (const model of servers.models) {
      for (const t of transports) {
        for (const clients of servers.clients) {
          const inflowCells = pick(variant, model, t, clients);
          if (inflowCells.length === 0) continue;
          const row = peers.map((p) => {
            const cs = pick(p, model, t, clients);
            return cs.length === 0 ? 'n/a' : spread(cs.map((c) => (inflowCells.find((i) => i.rep === c.rep)?.rps ?? Number.NaN) / c.rps));
          });
          if (row.every((x) => x === 'n/a')) continue;
          out.push(`| ${model} | ${t} | ${clients} | ${row.join(' | ')} |`);
        }
      }
    }
    out.push('');
  }
  out.push('### inflow / limit', '');
  out.push(
    'Server req/s (one row each) divided by the raw session.run ceiling of the same run: calls/s at batch 1 (what one request costs the model alone) and rows/s at batch 64 (what batching can reach); p50 divided by one batch-1 call.',
    '',
    '| model | transport | clients | req/s | ÷ session.run calls/s (batch 1) | ÷ rows/s (batch 64) | p50 ÷ one call |',
    '|---|---|---:|---:|---:|---:|---:|',
  );
  for (const model of servers.models) {
    for (const t of transports) {
      for (const clients of servers.clients) {
        const cs = pick('inflow', model, t, clients);
        if (cs.length === 0) continue;
        const rps = median(cs.map((c) => c.rps));
        const callUs = 1e6 / rawCalls(model, 1);
        out.push(
          `| ${model} | ${t} | ${clients} | ${n0(rps)} | ${ratio(rps / rawCalls(model, 1))} | ${ratio(rps / rawRows(model, 64))} | ${ratio(median(cs.map((c) => c.p50us)) / callUs)} |`,
        );
      }
    }
  }
  out.push('');
  if (servers.failures.length > 0) {
    out.push('### Failures', '');
    for (const f of servers.failures) out.push(`- rep ${f.rep}, ${f.server}, ${f.what}: ${f.reason.split('\n').slice(0, 3).join(' ')}`);
    out.push('');
  }
}

// --- stream processors -----------------------------------------------------------------------------------
if (streams) {
  out.push('## Stream processors', '');
  out.push(
    `Real broker, ${streams.partitions} partitions, JSON records \`{id, pixels}\` → \`{id, label, probabilities}\`; ${n0(streams.records)} pre-produced records (3× for digits-mlp, a tenth for the per-record gRPC peer); max rate = outputs 20 %…100 % over their arrival times. ${streams.reps ?? 1} rep(s): medians, each rep's max rate in brackets, ratio spread over reps. Latency: a steady feed for ${streams.latencySeconds} s (first second untimed), end-to-end = output arrival − input send, at ${streams.load} × each system's own max rate${streams.commonRate > 0 ? `, and at a common ${n0(streams.commonRate)} records/s for every system` : ''}. "backlog" = inputs not yet answered when the last was sent (a large one means the system fell behind the offered rate). CPU = the system's process tree (plus its model server's) per 1 000 records during the max-rate phase. ${streams.java}.`,
    '',
  );
  const models = [...new Set(streams.runs.map((r) => r.model))];
  const guarantees = [...new Set(streams.runs.map((r) => r.guarantee))];
  const systems = [...new Set(streams.runs.map((r) => r.system))];
  const embedded = systems.find((s) => s.startsWith('inflow embedded'));
  for (const model of models) {
    out.push(`### ${model}`, '');
    out.push(
      `| guarantee | system | max records/s | CPU s / 1k | at half: offered/s | p50 ms | p99 ms | backlog | ${streams.commonRate > 0 ? 'common: offered/s | p50 ms | p99 ms | backlog | ' : ''}inflow embedded / this |`,
      `|---|---|---:|---:|---:|---:|---:|---:|${streams.commonRate > 0 ? '---:|---:|---:|---:|' : ''}---:|`,
    );
    for (const g of guarantees) {
      const of = (system: string | undefined): StreamRun[] =>
        streams.runs.filter((x) => x.model === model && x.guarantee === g && x.system === system);
      const base = of(embedded);
      for (const system of systems) {
        const rs = of(system);
        if (rs.length === 0) continue;
        // Medians over reps; the ratio pairs each rep with inflow embedded's run of the same rep.
        const med = (f: (r: StreamRun) => number | undefined): number => median(rs.map((r) => f(r) ?? Number.NaN));
        const phase = (k: 'half' | 'common'): string =>
          rs.some((r) => r[k] !== undefined)
            ? `${n0(med((r) => r[k]?.offered))} | ${n1(med((r) => r[k]?.p50ms))} | ${n1(med((r) => r[k]?.p99ms))} | ${n0(med((r) => r[k]?.backlog))}`
            : '— | — | — | —';
        const perRep = rs.map((r) => (base.find((b) => (b.rep ?? 0) === (r.rep ?? 0))?.maxRate ?? Number.NaN) / r.maxRate);
        const notes = rs.flatMap((r) => [
          ...(r.error ? [`rep ${r.rep ?? 0} failed: ${r.error.split('\n')[0]?.slice(0, 200)}`] : []),
          ...(r.firstError ? [`rep ${r.rep ?? 0}: first try failed and was retried (${r.firstError.split('\n')[0]?.slice(0, 160)})`] : []),
        ]);
        out.push(
          `| ${g} | ${system} | ${n0(med((r) => r.maxRate))}${rs.length > 1 ? ` (${rs.map((r) => n0(r.maxRate)).join(', ')})` : ''} | ${n2(med((r) => r.cpuPer1k))} | ${phase('half')} | ${streams.commonRate > 0 ? `${phase('common')} | ` : ''}${system === embedded ? '' : spread(perRep)} |${notes.length > 0 ? ` ${notes.join('; ')}` : ''}`,
        );
      }
    }
    out.push('');
    const limit = rawRows(model, 64);
    if (Number.isFinite(limit)) {
      out.push(
        `inflow / limit (${model}): session.run at batch 64 gives ${n0(limit)} rows/s; ${guarantees
          .map((g) => {
            const e = median(
              streams.runs.filter((r) => r.model === model && r.guarantee === g && r.system === embedded).map((r) => r.maxRate),
            );
            return `inflow embedded ${g} ${n0(e)} records/s = ${ratio(e / limit)} of it`;
          })
          .join(
            '; ',
          )}${kafka ? `; Kafka's ConsumerPerformance reads ${n0(median(kafka.results.kafkaConsume))} msgs/s of ${kafka.recordBytes} B` : ''}.`,
        '',
      );
    }
    plot(
      `streams-${slug(model)}-throughput.svg`,
      barChart({
        title: `${model}: sustained records/s`,
        yLabel: 'records/s',
        logY: true,
        groups: guarantees.map((g) => ({
          name: g,
          bars: systems.map((system) => ({
            name: system,
            value: median(streams.runs.filter((r) => r.model === model && r.guarantee === g && r.system === system).map((r) => r.maxRate)),
          })),
        })),
      }),
      `${model} stream throughput`,
    );
    for (const g of guarantees) {
      plot(
        `streams-${slug(model)}-${slug(g)}-latency-cdf.svg`,
        lineChart({
          title: `${model}, ${g}: e2e latency CDF at half of each max rate (rep 0)`,
          xLabel: 'latency ms',
          yLabel: 'percentile',
          logX: true,
          series: streams.runs
            .filter((r) => r.model === model && r.guarantee === g && r.half !== undefined && (r.rep ?? 0) === 0)
            .map((r) => ({ name: r.system, points: (r.half?.cdf ?? []).map(([p, ms]) => [Math.max(ms, 0.1), p] as const) })),
        }),
        `${model} ${g} latency CDF`,
      );
    }
  }
}

// --- stateful stream processing ------------------------------------------------------------------------
if (stateful) {
  out.push('## Stateful stream processing (windowed count + mean)', '');
  out.push(
    `Real broker, ${stateful.partitions} partitions, ${n0(stateful.records)} pre-produced JSON records \`{id, amount}\` over ${n0(stateful.keys)} keys, timestamps 1 ms apart; per key, count and mean of \`amount\` over ${stateful.windowMs / 1000} s tumbling event-time windows, every update emitted (one output per input, checked), each window's last result checked against a reference ("wrong" must be 0). Max rate = outputs 20 %…100 % over their arrival times; ${stateful.reps} rep(s), medians. CPU = the system's process tree per 1 000 records; load = the machine's 1-minute load average sampled each second during the run.`,
    '',
  );
  const systems = [...new Set(stateful.runs.map((r) => r.system))];
  out.push(
    '| guarantee | system | records/s | CPU s / 1k | load1 mean (max) | outputs | wrong windows | inflow / this |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const g of [...new Set(stateful.runs.map((r) => r.guarantee))]) {
    const inflow = median(stateful.runs.filter((r) => r.guarantee === g && r.system === 'inflow').map((r) => r.maxRate));
    for (const system of systems) {
      const rs = stateful.runs.filter((r) => r.guarantee === g && r.system === system);
      const med = (f: (r: StatefulRun) => number): number => median(rs.map(f));
      const errors = rs.filter((r) => r.error !== undefined).map((r) => r.error?.split('\n')[0]);
      out.push(
        `| ${g} | ${system} | ${n0(med((r) => r.maxRate))} | ${n2(med((r) => r.cpuPer1k))} | ${n1(med((r) => r.loadMean))} (${n1(med((r) => r.loadMax))}) | ${rs.map((r) => `${r.outputs}/${r.records}`).join(', ')} | ${rs.map((r) => r.wrongWindows).join(', ')} | ${system === 'inflow' ? '' : ratio(inflow / med((r) => r.maxRate))} |${errors.length > 0 ? ` FAILED: ${errors.join('; ')}` : ''}`,
      );
    }
  }
  out.push('');
}

// --- throughput at a latency SLO ------------------------------------------------------------------------
if (slo) {
  out.push(`## Throughput at p99 ≤ ${slo.sloMs} ms (${slo.model})`, '');
  out.push(
    `Each system fed each rate for ${slo.seconds} s (ascending, until a fifth of a step's inputs is left undelivered); held = p99 ≤ ${slo.sloMs} ms, every input out within 2 s of the step, no growing backlog. Commit interval ${slo.commitIntervalMs} ms (exactly-once: the transaction interval). Cells: p50 / p99 ms (✗ = not held), load average at the step.`,
    '',
  );
  out.push(`| guarantee | system | held records/s | ${slo.rates.map((r) => `${n0(r)}/s`).join(' | ')} |`);
  out.push(`|---|---|---:|${slo.rates.map(() => '---').join('|')}|`);
  for (const r of slo.results) {
    const cells = slo.rates.map((rate) => {
      const st = r.steps.find((x) => x.offered === rate);
      return st ? `${st.p50ms.toFixed(1)} / ${st.p99ms.toFixed(1)}${st.held ? '' : ' ✗'} (${st.load1.toFixed(1)})` : '';
    });
    out.push(`| ${r.guarantee} | ${r.system} | ${r.error ? 'failed' : n0(r.sloRate)} | ${cells.join(' | ')} |`);
  }
  out.push('');
}

await writeFile(join(dir, 'report.md'), `${out.join('\n')}\n`);
for (const [name, svg] of svgs) await writeFile(join(dir, name), svg);
console.log(`wrote ${join(dir, 'report.md')} and ${svgs.length} SVG plots`);
