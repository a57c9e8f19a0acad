/**
 * Every `inflow` command as a user runs it: a spawned process, its real output and exit code —
 * help with examples, predict (embedded and remote), serve with its dashboard, bench against the
 * server and through a pipeline, the demo's --json, and bad input (one line, exit code ≠ 0,
 * nothing left running).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient } from '../src/kafka/index.ts';
import { brokerOrSkip } from './setup/broker.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'inflow.js');
const SAMPLE = join(ROOT, 'models', 'samples', 'digits-mlp.json');
const REPOSITORY = join(ROOT, 'models', 'repository');
const ENV: NodeJS.ProcessEnv = { ...process.env, ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function inflow(args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: options.env ?? ENV, timeout: 90_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.stdin ?? '');
  });
}

/** A TCP listener on a free loopback port (a port "in use"). */
async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('inflow commands', () => {
  it('prints help with examples for every command', async () => {
    const top = await inflow(['--help']);
    assert.equal(top.code, 0);
    const commands = ['demo', 'serve', 'predict', 'bench', 'kafka', 'models', 'stream', 'validate'];
    // Two processes at a time: each spends most of its time loading the sources.
    for (let i = 0; i < commands.length; i += 2) {
      await Promise.all(
        commands.slice(i, i + 2).map(async (command) => {
          assert.match(top.stdout, new RegExp(`^ {2}${command}\\b`, 'm'), `top-level help lists ${command}`);
          const r = await inflow([command, '--help']);
          assert.equal(r.code, 0, `${command} --help: ${r.stderr}`);
          assert.match(r.stdout, /\nExamples:\n {2}inflow /, `${command} --help has examples`);
        }),
      );
    }
  });

  it('predict answers embedded from a sample file, from stdin in TF Serving format, and as OIP JSON', async () => {
    const human = await inflow(['predict', 'digits-mlp', '--input', SAMPLE, '--model-repository', REPOSITORY]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      /^digits-mlp v1 \(embedded, [\d.]+ ms\)\n {2}label {10}INT64 \[8\] {5}\[2, 0, 4, 9, 4, 1, 2, 4\]\n {2}probabilities {2}FP32 \[8, 10\]/,
    );
    const pixels = [
      0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4,
      11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
    ];
    const json = await inflow(['predict', 'digits-mlp', '--input', '-', '--model-repository', REPOSITORY, '--json'], {
      stdin: JSON.stringify({ instances: [pixels] }),
    });
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.stdout) as {
      model_name: string;
      model_version: string;
      outputs: Array<{ name: string; data: number[] }>;
    };
    assert.deepEqual([answer.model_name, answer.model_version], ['digits-mlp', '1']);
    assert.deepEqual(answer.outputs.find((o) => o.name === 'label')?.data, [0]);
  });

  it('predict refuses a missing model repository, an unknown model and a missing input with one line', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [
        ['predict', 'digits-mlp', '--input', SAMPLE, '--model-repository', '/no/such/repository'],
        2,
        /^inflow: model repository \/no\/such\/repository cannot be read: ENOENT\n$/,
      ],
      [['predict', 'digits-mlp', '--input', SAMPLE], 2, /^inflow: --model-repository <dir> is required for an embedded prediction/],
      [
        ['predict', 'no-such-model', '--input', SAMPLE, '--model-repository', REPOSITORY],
        2,
        /^inflow: model no-such-model has no folder in the model repository .*; expected one of: .*digits-mlp.*\n$/,
      ],
      [
        ['predict', 'digits-mlp', '--model-repository', REPOSITORY],
        2,
        /^inflow: --input <file\|-> is required: .* e\.g\. --input models\/samples\/digits-mlp\.json\n$/,
      ],
      [['predict', 'digits-mlp', '--input', SAMPLE, '--server', '127.0.0.1:1'], 3, /^inflow: .*127\.0\.0\.1:1.*\n$/],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await inflow(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, stderr);
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
  });

  describe('against a running inflow serve', () => {
    let serve: ChildProcess | undefined;
    let rest = '';
    let grpc = '';
    before(async () => {
      serve = spawn(
        process.execPath,
        [BIN, 'serve', '--model-repository', REPOSITORY, '--host', '127.0.0.1', '--rest-port', '0', '--grpc-port', '0'],
        {
          cwd: ROOT,
          env: ENV,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let text = '';
      await new Promise<void>((resolve, reject) => {
        serve?.stdout?.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          const r = /REST {2}http:\/\/(\S+)/.exec(text);
          const g = /gRPC {2}(\S+)/.exec(text);
          if (r?.[1] && g?.[1]) {
            rest = r[1];
            grpc = g[1];
            resolve();
          }
        });
        serve?.once('exit', (code) => reject(new Error(`inflow serve exited (${code}): ${text}`)));
      });
    });
    after(async () => {
      if (serve && serve.exitCode === null) {
        const exited = new Promise((resolve) => serve?.once('exit', resolve));
        serve.kill('SIGTERM');
        await exited;
      }
    });

    it('predict --server speaks OIP gRPC, OIP REST and TF Serving REST', async () => {
      for (const args of [
        ['--server', grpc],
        ['--server', `http://${rest}`],
        ['--server', `http://${rest}`, '--protocol', 'tfserving-rest'],
      ]) {
        const r = await inflow(['predict', 'digits-mlp', '--input', SAMPLE, ...args]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /^digits-mlp v1 \((oip-grpc|oip-rest|tfserving-rest) \S+, [\d.]+ ms\)\n {2}label {10}INT64 \[8\] {5}\[2, 0, 4, 9, 4, 1, 2, 4\]/,
        );
      }
    });

    it('bench --server prints a percentile table, or JSON', async () => {
      const table = await inflow(['bench', '--server', grpc, '--model', 'digits-mlp', '--requests', '200', '--concurrency', '4']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(
        table.stdout,
        /^REQUESTS {2}OK +ERRORS {2}REQ\/S {2}ROWS\/S {2}P50 +P90 +P99 +P99\.9 +MAX\n +200 +200 +0 +[\d,]+ +[\d,]+ +[\d.]+ m?s/,
      );
      assert.match(table.stderr, /100% {2}200\/200 requests/);
      const json = await inflow(['bench', '--server', `http://${rest}`, '--model', 'digits-mlp', '--requests', '100', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const r = JSON.parse(json.stdout) as { sent: number; ok: number; protocol: string; latencyMs: { p50: number; p99: number } };
      assert.deepEqual([r.sent, r.ok, r.protocol], [100, 100, 'oip-rest']);
      assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p99 >= r.latencyMs.p50);
    });

    it('serves the dashboard page and its state', async () => {
      const page = await fetch(`http://${rest}/dashboard/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(await page.text(), /<script src="uplot\.js"><\/script>/);
      const state = (await (await fetch(`http://${rest}/dashboard/api/state`)).json()) as {
        admin: boolean;
        models: Array<{ name: string }>;
      };
      assert.equal(state.admin, false);
      assert.ok(state.models.some((m) => m.name === 'digits-mlp'));
      assert.equal((await fetch(`http://${rest}/dashboard/uplot.js`)).status, 200);
    });
  });

  it('serve --model loads only the named models of the repository; the others answer NOT_FOUND', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--model-repository', REPOSITORY, '--model', 'digits-mlp', '--host', '127.0.0.1', '--rest-port', '0', '--no-grpc'],
      { cwd: ROOT, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let text = '';
      const rest = await new Promise<string>((resolve, reject) => {
        child.stdout?.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          const r = /REST {2}http:\/\/(\S+)/.exec(text);
          if (r?.[1]) resolve(r[1]);
        });
        child.once('exit', (code) => reject(new Error(`inflow serve exited (${code}): ${text}`)));
      });
      const served = await fetch(`http://${rest}/v1/models/digits-mlp`);
      assert.equal(served.status, 200);
      const state = (await (await fetch(`http://${rest}/dashboard/api/state`)).json()) as { models: Array<{ name: string }> };
      assert.deepEqual(
        state.models.map((m) => m.name),
        ['digits-mlp'],
        'the server knows the named model only',
      );
      const other = await fetch(`http://${rest}/v1/models/mlp-784`);
      assert.equal(other.status, 404);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('serve refuses a port in use with one line, and leaves nothing listening', async () => {
    const busy = await occupyPort();
    const { port: grpcPort, server: probe } = await occupyPort();
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    try {
      const r = await inflow([
        'serve',
        '--model-repository',
        REPOSITORY,
        '--host',
        '127.0.0.1',
        '--rest-port',
        String(busy.port),
        '--grpc-port',
        String(grpcPort),
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `inflow: 127.0.0.1:${busy.port} is already in use; stop what listens there, or choose other ports (--rest-port / --grpc-port; 0 picks a free one)\n`,
      );
      assert.equal(await portIsFree(grpcPort), true, 'the gRPC port is not held');
    } finally {
      busy.server.close();
    }
  });

  it('bench --pipeline runs a pipeline file under load on the in-process log', async () => {
    const r = await inflow(['bench', '--pipeline', 'examples/pipelines/digits-embedded.yaml', '--records', '300', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { sent: number; answered: number; deadLettered: number; latencyMs: { p50: number } };
    assert.deepEqual([result.sent, result.answered, result.deadLettered], [300, 300, 0]);
    assert.ok(result.latencyMs.p50 > 0);
    assert.match(
      r.stderr,
      /^bench pipeline digits-scorer: digits → digits-scored, digits-unscorable \(dead letters: digits-dlq\): 300 events$/m,
    );
  });

  it('validate names a typo in a pipeline file on one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-cli-'));
    try {
      const file = join(dir, 'typo.yaml');
      await writeFile(
        file,
        'applicationId: typo\nmodels:\n  local: { embedded: { modelRepository: ' +
          REPOSITORY +
          ' } }\npipeline:\n  - source: { topic: in }\n  - predict: { modle: digits-mlp, using: local, inputs: { input: { field: x } } }\n  - to: { topic: out }\n',
      );
      const r = await inflow(['validate', file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^inflow: invalid configuration in .*typo\.yaml: .*unknown key "modle"/);
      assert.equal(r.stderr.split('\n').length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('demo --json prints the summary as JSON', async () => {
    const r = await inflow([
      'demo',
      '--records',
      '600',
      '--rate',
      '0',
      '--rest-port',
      '0',
      '--grpc-port',
      '0',
      '--json',
      '--remote',
      'oip-rest',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as {
      records: number;
      modes: Array<{ mode: string; where: string; records: number; accuracy: number; p50Ms: number }>;
    };
    assert.equal(summary.records, 600);
    assert.deepEqual(
      summary.modes.map((m) => [m.mode, m.where, m.records]),
      [
        ['embedded', 'in the pipeline', 600],
        ['remote', 'server, oip-rest', 600],
      ],
    );
    assert.ok(summary.modes.every((m) => m.accuracy > 0.95 && m.p50Ms > 0));
    assert.match(r.stderr, /^dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard\//m, 'progress goes to stderr with --json');
  });

  describe('on a real broker', { skip: brokerOrSkip() === undefined && 'no broker: see the global setup message' }, () => {
    const servers = brokerOrSkip()?.join(',') ?? '';

    it('demo --kafka host:port runs both pipelines on the cluster and deletes its topics', async () => {
      const r = await inflow([
        'demo',
        '--records',
        '500',
        '--rate',
        '0',
        '--kafka',
        servers,
        '--rest-port',
        '0',
        '--grpc-port',
        '0',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { kafka: string; modes: Array<{ records: number; accuracy: number }> };
      assert.equal(summary.kafka, `Kafka at ${servers}`);
      assert.deepEqual(
        summary.modes.map((m) => m.records),
        [500, 500],
      );
      const client = createKafkaClient({ bootstrapServers: brokerOrSkip() ?? [] });
      const admin = client.admin();
      try {
        assert.deepEqual(
          (await admin.listTopics()).filter((t) => t.startsWith('inflow-demo-')),
          [],
          'the demo deleted its topics',
        );
      } finally {
        await admin.close();
        await client.close();
      }
    });

    it('models publish, then inspect (with the cluster from a --kafka-config file) shows the version with its files', async () => {
      const topic = `inflow-cli-models-${Date.now()}`;
      const dir = await mkdtemp(join(tmpdir(), 'inflow-cli-models-'));
      const kafkaConfig = join(dir, 'kafka.yaml');
      await writeFile(kafkaConfig, `bootstrapServers: ${JSON.stringify(servers.split(','))}\nclientId: cli-models-test\n`);
      const publish = await inflow([
        'models',
        'publish',
        join(REPOSITORY, 'digits-mlp', '1'),
        '--model',
        'digits-mlp',
        '--version',
        '3',
        '--kafka',
        servers,
        '--topic',
        topic,
      ]);
      assert.equal(publish.code, 0, publish.stderr);
      const inspect = await inflow(['models', 'inspect', 'digits-mlp', '--kafka-config', kafkaConfig, '--topic', topic]);
      await rm(dir, { recursive: true });
      assert.equal(inspect.code, 0, inspect.stderr);
      assert.ok(
        inspect.stdout.startsWith(
          `digits-mlp in ${topic}\n  labels:  (none)\n  routing: (none: the latest version answers)\n  version 3: published `,
        ),
        inspect.stdout,
      );
      assert.match(inspect.stdout, /^ {4}model\.onnx {2}20\.5 KiB {2}sha256 [0-9a-f]{64}$/m);
    });
  });

  it('demo stops cleanly on Ctrl-C: a partial summary, exit 0, its ports released', async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--records', '1000000', '--rate', '500', '--rest-port', '0', '--grpc-port', '0'], {
      cwd: ROOT,
      env: ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Ctrl-C once predictions are flowing (the first progress line that shows some).
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (/^embedded +[1-9][\d,]* predicted/m.test(stdout)) resolve();
      });
      void exited.then(() => reject(new Error(`demo exited early: ${stdout}${stderr}`)));
    });
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /^stopped after [\d,]+ of 1000000 events; what was scored so far:$/m);
    assert.match(stdout, /^embedded {2}in the pipeline /m);
    const port = Number(/dashboard: http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)?.[1]);
    assert.equal(await portIsFree(port), true, 'the REST port is released');
  });

  it('demo reports an unreachable Kafka, a missing Java and a port in use on one line each', async () => {
    const unreachable = await inflow(['demo', '--records', '10', '--kafka', '127.0.0.1:1']);
    assert.equal(unreachable.code, 3, unreachable.stderr);
    assert.match(unreachable.stderr, /^inflow: .*Connection to 127\.0\.0\.1:1 failed.*\n$/m);
    assert.equal(unreachable.stderr.trim().split('\n').at(-1)?.startsWith('inflow: '), true);

    // A PATH with node and nothing else: no java.
    const bin = await mkdtemp(join(tmpdir(), 'inflow-nojava-'));
    try {
      await symlink(process.execPath, join(bin, 'node'));
      const env: NodeJS.ProcessEnv = { ...ENV, PATH: bin };
      delete env.JAVA_HOME;
      const noJava = await inflow(['demo', '--records', '10', '--kafka', 'auto'], { env });
      assert.equal(noJava.code, 3, noJava.stderr);
      assert.match(noJava.stderr, /^inflow: Java 17\+ is needed to run a local Kafka broker .*cannot run "java".*\n$/m);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }

    const busy = await occupyPort();
    try {
      const r = await inflow(['demo', '--records', '10', '--rest-port', String(busy.port), '--grpc-port', '0']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `inflow: 127.0.0.1:${busy.port} is already in use; stop what listens there, or choose other ports (--rest-port / --grpc-port; 0 picks a free one)\n`,
      );
    } finally {
      busy.server.close();
    }
  });
});
