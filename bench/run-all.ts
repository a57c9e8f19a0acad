/**
 * Reruns every benchmark of issue 8 and writes the report: `npm run bench [-- --quick]`.
 *
 *   1. limits: onnxruntime-node session.run per example model and batch size (bench/runtime/onnx-throughput.ts);
 *      Kafka's ProducerPerformance/ConsumerPerformance vs inflow's client (bench/kafka/throughput.ts), and
 *      inflow's consumer alone vs ConsumerPerformance in CPU per record (bench/kafka/consume-compare.ts →
 *      <out>/kafka-consume.md)
 *   2. model servers: inflow vs MLServer, Triton (PyTriton), KServe (bench/peers/servers-compare.ts);
 *      inflow's gRPC server vs bare servers on its transport (bench/server/grpc-ceiling-compare.ts →
 *      <out>/grpc-ceiling.md)
 *   3. stream processors: inflow embedded/remote vs Kafka Streams + ORT Java, Kafka Streams → gRPC,
 *      Quix Streams (bench/peers/streams-compare.ts)
 *   4. stateful stream processing: a windowed count + mean in inflow, Kafka Streams (RocksDB), Quix
 *      Streams (bench/streams/stateful-compare.ts)
 *   4b. throughput at a latency SLO (p99 ≤ 50 ms): inflow embedded (1 and 2 stream threads), remote,
 *      Kafka Streams + ORT Java, Quix (bench/streams/slo-throughput.ts)
 *   5. report: bench/report.ts → <out>/report.md + SVG plots
 *
 *   node bench/run-all.ts [--quick] [--out docs/benchmarks/run-<mode>] [--only limits,kafka,servers,grpc,streams,slo,stateful]
 *
 * --only runs the named steps and only the peer setups they use (servers: the MLServer, KServe and PyTriton
 * venvs; streams, slo, stateful: the Kafka Streams jar and the Quix venv; limits, kafka, grpc: none).
 *
 * --quick (about 5 minutes on the 2-core machine once the peers are set up): digits-mlp only for
 * the servers at 1 and 64 clients, 2 s per cell; gRPC ModelInfer against bare grpc-js only;
 * mlp-784 only for the streams; the SLO ladder for inflow embedded and Kafka Streams at two rates;
 * fewer records; one rep. Full: both models everywhere, 4 s per
 * cell, 2 reps of the server matrix. Starts its own Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is
 * set (a broker shared with running tests may be stopped under it). Each step's output goes to
 * <out>/logs/; a failing step is reported and the others still run.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../src/kafka/broker/local-broker.ts';
import { execFileAsync, loadAverage } from './lib/process.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string', default: 'limits,kafka,servers,grpc,streams,slo,stateful' },
  },
});
const QUICK = values.quick;
const MODE = QUICK ? 'quick' : 'full';
const ROOT = join(import.meta.dirname, '..');
const OUT = values.out ?? join(ROOT, 'docs', 'benchmarks', `run-${MODE}`);
const ONLY = new Set(values.only.split(','));
await rm(OUT, { recursive: true, force: true });
await mkdir(join(OUT, 'logs'), { recursive: true });
const started = Date.now();
const node = process.execPath;
const loads: Array<{ at: string; step: string; load1: number }> = [];
const commands: string[] = [];

/** Runs one step as a child process; its stdout+stderr go to logs/<name>.log; resolves with stdout. */
async function step(name: string, command: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  loads.push({ at: new Date().toISOString(), step: name, load1: await loadAverage() });
  const shown = [command === node ? 'node' : command, ...args.map((a) => a.replace(`${ROOT}/`, ''))].join(' ');
  commands.push(
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v} `)
      .join('')}${shown}`,
  );
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${name}: ${shown}\n`);
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let log = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    log += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    log += c.toString();
    // Progress lines of the long steps, so a person watching sees it move.
    for (const line of c.toString().split('\n')) if (/^(rep |running:|  \d|round )/.test(line)) process.stderr.write(`    ${line}\n`);
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  await writeFile(join(OUT, 'logs', `${name}.log`), log);
  if (code !== 0) throw new Error(`${name} exited with ${code}; see ${join(OUT, 'logs', `${name}.log`)}`);
  return stdout;
}

const failed: string[] = [];
async function attempt(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    failed.push(`${name}: ${(e as Error).message}`);
    process.stderr.write(`  ${name} FAILED: ${(e as Error).message}\n`);
  }
}

/** True when the Kafka Streams peers' jar is missing or older than its pom or a source file. */
async function javaStale(): Promise<boolean> {
  const project = join(ROOT, 'bench', 'peers', 'kafka-streams-onnx');
  try {
    const jar = (await stat(join(project, 'target', 'kafka-streams-onnx-1.0-all.jar'))).mtimeMs;
    const sources = [
      join(project, 'pom.xml'),
      ...(await readdir(join(project, 'src'), { recursive: true })).map((f) => join(project, 'src', f)),
    ];
    for (const f of sources) if ((await stat(f)).mtimeMs > jar) return true;
    return false;
  } catch {
    return true;
  }
}

/** The peers' setups each step needs (Python venvs by peer name, and 'java' for the Kafka Streams jar). */
const SETUPS: Record<string, readonly string[]> = {
  limits: [],
  kafka: [],
  servers: ['mlserver', 'kserve', 'pytriton'],
  grpc: [],
  streams: ['quix', 'java'],
  // Quick runs inflow and Kafka Streams only; full adds Quix.
  slo: QUICK ? ['java'] : ['quix', 'java'],
  stateful: ['quix', 'java'],
};
const unknown = [...ONLY].filter((s) => !(s in SETUPS));
if (unknown.length > 0)
  throw new Error(`--only: unknown step(s) ${unknown.join(', ')}; expected some of ${Object.keys(SETUPS).join(', ')}`);
const needed = new Set([...ONLY].flatMap((s) => SETUPS[s] ?? []));

// Tools first, only those the selected steps use: the peers' venvs and the Java jar (cached after the first run).
await attempt('setup', async () => {
  for (const peer of ['mlserver', 'kserve', 'pytriton', 'quix'])
    if (needed.has(peer)) await step(`setup-${peer}`, 'bash', ['bench/peers/setup-python.sh', peer]);
  if (needed.has('java') && (await javaStale()))
    await step('setup-java', 'mvn', ['-q', '-B', '-f', 'bench/peers/kafka-streams-onnx/pom.xml', 'package', '-DskipTests']);
});

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
try {
  if (ONLY.has('limits')) {
    await attempt('limits', async () => {
      const models = ['digits-mlp', 'mlp-784', 'breast-cancer-gbt', 'cnn-mobilenet'];
      const batches = QUICK ? '1,8,64,512' : '1,2,4,8,16,32,64,128,256,512';
      const results: unknown[] = [];
      for (const m of models) {
        const stdout = await step(`limits-onnx-${m}`, node, [
          'bench/runtime/onnx-throughput.ts',
          m,
          QUICK ? '0.3' : '1',
          '1',
          batches,
          QUICK ? 'direct' : 'direct,servable8',
        ]);
        results.push(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}'));
      }
      await writeFile(join(OUT, 'limits-onnx.json'), JSON.stringify(results, null, 1));
    });
  }
  if (ONLY.has('kafka')) {
    await attempt('kafka', async () => {
      await step(
        'limits-kafka',
        node,
        [
          'bench/kafka/throughput.ts',
          '--records',
          QUICK ? '100000' : '200000',
          '--reps',
          QUICK ? '1' : '3',
          '--json',
          join(OUT, 'limits-kafka.json'),
        ],
        { KAFKA_BOOTSTRAP_SERVERS: bootstrap },
      );
      // inflow's consumer alone vs ConsumerPerformance, CPU per record (a table, not plotted).
      const stdout = await step(
        'limits-kafka-consume',
        node,
        [
          'bench/kafka/consume-compare.ts',
          '--records',
          QUICK ? '100000' : '300000',
          '--reps',
          QUICK ? '1' : '3',
          '--sides',
          'kafka,inflow',
        ],
        { KAFKA_BOOTSTRAP_SERVERS: bootstrap },
      );
      await writeFile(join(OUT, 'kafka-consume.md'), stdout);
    });
  }
  if (ONLY.has('servers')) {
    await attempt('servers', async () => {
      await step('servers', node, [
        'bench/peers/servers-compare.ts',
        '--seconds',
        QUICK ? '2' : '4',
        '--models',
        QUICK ? 'digits-mlp' : 'digits-mlp,mlp-784',
        '--servers',
        QUICK ? 'inflow,mlserver,triton,kserve' : 'inflow,mlserver,triton,kserve,inflow-nobatch',
        // Quick: one client and 64 (16 adds a third of the step's time and sits between them).
        ...(QUICK ? ['--clients', '1,64'] : []),
        '--reps',
        QUICK ? '1' : '2',
        '--out',
        join(OUT, 'servers.json'),
      ]);
    });
  }
  if (ONLY.has('grpc')) {
    await attempt('grpc', async () => {
      // inflow's gRPC server against bare servers on its transport, same cores and messages (a table, not plotted).
      const stdout = await step('grpc', node, [
        'bench/server/grpc-ceiling-compare.ts',
        '--seconds',
        QUICK ? '2' : '5',
        '--reps',
        QUICK ? '1' : '3',
        // Quick: ModelInfer on inflow and the transport's ceiling (bare grpc-js) only.
        ...(QUICK ? ['--methods', 'infer', '--servers', 'inflow,grpc-js'] : []),
      ]);
      await writeFile(join(OUT, 'grpc-ceiling.md'), stdout);
    });
  }
  if (ONLY.has('streams')) {
    await attempt('streams', async () => {
      await step(
        'streams',
        node,
        [
          'bench/peers/streams-compare.ts',
          '--records',
          QUICK ? '6000' : '20000',
          '--latency-seconds',
          QUICK ? '3' : '8',
          '--common-rate',
          QUICK ? '0' : '100',
          '--datasets',
          QUICK ? 'mlp-784' : 'mlp-784,digits-mlp',
          '--reps',
          QUICK ? '1' : '2',
          '--out',
          join(OUT, 'streams.json'),
        ],
        { KAFKA_BOOTSTRAP_SERVERS: bootstrap },
      );
    });
  }
  if (ONLY.has('slo')) {
    await attempt('slo', async () => {
      // Throughput at p99 ≤ 50 ms (issue 22 item 5). Quick (~30 s): inflow embedded and Kafka
      // Streams + ORT Java, at-least-once, two rates of 4 s.
      await step(
        'slo',
        node,
        [
          'bench/streams/slo-throughput.ts',
          '--rates',
          QUICK ? '500,2000' : '250,500,1000,2000,3000,4000,6000,8000,12000',
          '--seconds',
          QUICK ? '4' : '60',
          '--systems',
          QUICK ? 'inflow-embedded,kstreams-onnx' : 'inflow-embedded,inflow-embedded-2t,inflow-remote,kstreams-onnx,quix',
          '--guarantees',
          QUICK ? 'at-least-once' : 'at-least-once,exactly-once',
          '--out',
          join(OUT, 'slo.json'),
        ],
        { KAFKA_BOOTSTRAP_SERVERS: bootstrap },
      );
    });
  }
  if (ONLY.has('stateful')) {
    await attempt('stateful', async () => {
      await step(
        'stateful',
        node,
        [
          'bench/streams/stateful-compare.ts',
          '--records',
          QUICK ? '20000' : '100000',
          '--reps',
          QUICK ? '1' : '2',
          '--out',
          join(OUT, 'stateful.json'),
        ],
        { KAFKA_BOOTSTRAP_SERVERS: bootstrap },
      );
    });
  }
} finally {
  await broker?.stop();
}

// Versions, for the report.
const sh = async (cmd: string): Promise<string> => {
  try {
    return (await execFileAsync('bash', ['-c', cmd], { maxBuffer: 4 * 1024 * 1024 })).stdout.trim();
  } catch {
    return '?';
  }
};
const pipVersion = async (peer: string, pkgs: string): Promise<string> =>
  !needed.has(peer)
    ? 'not run'
    : await sh(
        `"$(bash bench/peers/setup-python.sh ${peer} 2>/dev/null | tail -1)" -m pip list --format=freeze 2>/dev/null | grep -iE '^(${pkgs})==' | tr '\\n' ' '`,
      );
const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string };
const envInfo = {
  mode: MODE,
  startedAt: new Date(started).toISOString(),
  wallSeconds: (Date.now() - started) / 1000,
  machine: {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(0)} GiB (${(freemem() / 2 ** 30).toFixed(0)} GiB free at the end)`,
    os: await sh('. /etc/os-release && echo "$PRETTY_NAME, kernel $(uname -r)"'),
  },
  versions: {
    node: process.version,
    'onnxruntime-node': pkg.version,
    java: needed.has('java') ? await sh('java -version 2>&1 | head -1') : 'not run',
    kafka:
      "Apache Kafka 4.1.2 broker (KRaft, single node, the project's `inflow kafka` jars), kafka-streams 4.1.2, onnxruntime (Java) 1.23.2, grpc-java 1.76.0",
    python: await sh('python3 --version'),
    mlserver: await pipVersion('mlserver', 'mlserver|onnxruntime|uvloop'),
    kserve: await pipVersion('kserve', 'kserve|onnxruntime'),
    pytriton: await pipVersion('pytriton', 'nvidia-pytriton|onnxruntime'),
    quix: await pipVersion('quix', 'quixstreams|onnxruntime|confluent-kafka'),
    wrk: await sh('wrk -v 2>&1 | head -1'),
    ghz: await sh('"${GHZ:-$HOME/go/bin/ghz}" --version 2>&1'),
  },
  commands: [`npm run bench${QUICK ? ' -- --quick' : ''}   # = node bench/run-all.ts${QUICK ? ' --quick' : ''}, which ran:`, ...commands],
  load: loads,
  failed,
};
await writeFile(join(OUT, 'env.json'), JSON.stringify(envInfo, null, 1));
await step('report', node, ['bench/report.ts', OUT]);
process.stderr.write(
  `done in ${((Date.now() - started) / 1000).toFixed(0)} s: ${join(OUT, 'report.md')}${failed.length > 0 ? `; FAILED steps: ${failed.join('; ')}` : ''}\n`,
);
if (failed.length > 0) process.exitCode = 1;
