/**
 * A new user's first hour with the `inflow` command (issue 21): a real process, real output, real
 * exit codes, against the test broker where Kafka is involved.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import { brokerOrSkip } from './setup/broker.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'inflow.js');
const broker = brokerOrSkip();
const noBroker = broker === undefined && 'no Kafka broker: see the global setup message';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `inflow …` (node flags first) in the repository and answers its exit code and output. */
async function inflow(args: string[], o: { env?: NodeJS.ProcessEnv; nodeFlags?: string[] } = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...(o.nodeFlags ?? []), BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...o.env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A port something listens on (the test's own server), and how to let go of it. */
async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** A port nothing listens on: bound once by the test, then closed. */
async function closedPort(): Promise<number> {
  const { port, server } = await occupiedPort();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** JSON log lines of a model load ("onnx model loaded", …) in a command's stderr. */
const modelLoadLogs = (stderr: string): string[] =>
  stderr.split('\n').filter((l) => l.startsWith('{') && /model loaded|loaded version|"version":/.test(l));

describe('inflow on a fresh machine', () => {
  it('says in one line which Node to install when the running one is too old', async () => {
    // Node 20 reports itself as 20.x before inflow's entry runs (it would otherwise fail with ERR_UNKNOWN_FILE_EXTENSION).
    const old = await inflow(['demo'], {
      nodeFlags: ['--import', 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})'],
    });
    assert.equal(old.code, 3);
    assert.equal(old.stdout, '');
    assert.match(old.stderr, /^inflow: needs Node\.js >= 22\.22, this is v20\.20\.2; .*npm i -g --prefix "\$HOME\/\.node24" node@24.*\n$/);
  });

  it('prints its version, and its help through "inflow help" as through --help', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await inflow(['--version']);
    assert.deepEqual([v.code, v.stdout], [0, `inflow ${version} (Node.js ${process.version})\n`]);
    assert.deepEqual(JSON.parse((await inflow(['--version', '--json'])).stdout), { version, node: process.versions.node });
    const help = await inflow(['help']);
    assert.equal(help.code, 0);
    assert.equal(help.stdout, (await inflow(['--help'])).stdout);
    assert.match(help.stdout, /^ {2}topics create <file> /m);
    const serve = await inflow(['help', 'serve']);
    assert.equal(serve.stdout, (await inflow(['serve', '--help'])).stdout);
    assert.match(serve.stdout, /^inflow serve --model-repository/);
  });

  it('says what is wrong with a negative number instead of "argument is ambiguous"', async () => {
    const r = await inflow(['demo', '--rate', '-5']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'inflow: --rate must be an integer 0-1000000, got "-5"\n');
  });
});

describe('inflow --json', () => {
  it('validate, stream --dry-run and edge --dry-run print one JSON object', async () => {
    const file = 'examples/pipelines/digits-embedded.yaml';
    const validate = await inflow(['validate', file, '--json']);
    assert.equal(validate.code, 0, validate.stderr);
    const summary = {
      valid: true,
      file,
      applicationId: 'digits-scorer',
      guarantee: 'exactly-once',
      inputTopics: ['digits'],
      outputTopics: ['digits-scored', 'digits-unscorable'],
      deadLetterTopic: 'digits-dlq',
      nodes: 8,
    };
    assert.deepEqual(JSON.parse(validate.stdout), summary);
    const dry = await inflow(['stream', file, '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const { describe: text, ...rest } = JSON.parse(dry.stdout) as { describe: string };
    assert.deepEqual(rest, summary);
    assert.match(text, /digits-scorer/);
    const edge = await inflow(['edge', 'examples/edge/digits-agent.yaml', '--dry-run', '--json']);
    assert.equal(edge.code, 0, edge.stderr);
    const agent = JSON.parse(edge.stdout) as { valid: boolean; agent: { agentId: string; kafka: { forward: Record<string, string> } } };
    assert.equal(agent.valid, true);
    assert.equal(agent.agent.agentId, 'gateway-1');
    assert.equal(agent.agent.kafka.forward.predictions, 'edge-predictions');
  });

  it('reports errors as one JSON object on stderr with the code and the exit code', async () => {
    const missing = await inflow(['validate', 'no-such-pipeline.yaml', '--json']);
    assert.equal(missing.code, 2);
    assert.equal(missing.stdout, '');
    assert.deepEqual(JSON.parse(missing.stderr), {
      error: { code: 'INVALID_CONFIG', message: 'config file no-such-pipeline.yaml does not exist', exitCode: 2 },
    });
    const flag = await inflow(['stream', '--bogus', '--json']);
    assert.equal(flag.code, 2);
    assert.equal((JSON.parse(flag.stderr) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
  });
});

describe('inflow predict', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inflow-first-hour-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('names the input file whose JSON is invalid', async () => {
    const file = join(dir, 'request.json');
    await writeFile(file, '{"inputs": [');
    const r = await inflow(['predict', 'digits-mlp', '--input', file, '--server', 'http://127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^inflow: --input ${file}: .*JSON`));
  });

  it('loads only the model it predicts with from a repository of several', async () => {
    const r = await inflow(
      ['predict', 'digits-mlp', '--input', 'models/samples/digits-mlp.json', '--model-repository', 'models/repository'],
      {
        env: { INFLOW_LOG_LEVEL: 'info' },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const loaded = modelLoadLogs(r.stderr)
      .map((l) => JSON.parse(l) as { model?: string; msg?: string })
      .filter((l) => l.msg === 'version loaded')
      .map((l) => l.model);
    assert.deepEqual(loaded, ['digits-mlp'], r.stderr);
  });

  it('reports an unreachable gRPC server in its own words, not grpc-js text', async () => {
    const port = await closedPort();
    const r = await inflow(['predict', 'digits-mlp', '--input', 'models/samples/digits-mlp.json', '--server', `127.0.0.1:${port}`]);
    assert.equal(r.code, 3);
    assert.equal(
      r.stderr,
      `inflow: remote oip-grpc 127.0.0.1:${port}: cannot reach the server (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}); expected it to accept connections (gRPC UNAVAILABLE)\n`,
    );
  });
});

describe('inflow serve fails fast', () => {
  // INFLOW_LOG_LEVEL=info: a model load would log; none may happen before these failures.
  const env = { INFLOW_LOG_LEVEL: 'info' };

  it('on a port in use, before loading any model', async () => {
    const { port, server } = await occupiedPort();
    try {
      const r = await inflow(['serve', '--model-repository', 'models/repository', '--rest-port', String(port), '--grpc-port', '0'], {
        env,
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^inflow: 0\\.0\\.0\\.0:${port} is already in use; `, 'm'));
      assert.deepEqual(modelLoadLogs(r.stderr), []);
    } finally {
      server.close();
    }
  });

  it('on an unreachable Kafka, before loading any model', async () => {
    const port = await closedPort();
    const r = await inflow(
      ['serve', '--model-repository', 'models/repository', '--rest-port', '0', '--grpc-port', '0', '--kafka', `127.0.0.1:${port}`],
      {
        env,
      },
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^inflow: cannot reach Kafka at 127\\.0\\.0\\.1:${port}`, 'm'));
    assert.deepEqual(modelLoadLogs(r.stderr), []);
  });

  it('prints the address it listens on, 0.0.0.0 by default', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--model-repository', 'models/repository', '--rest-port', '0', '--grpc-port', '0'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8');
    try {
      for await (const chunk of child.stdout) {
        stdout += chunk as string;
        if (/^ {2}gRPC .*\n/m.test(stdout)) break;
      }
      assert.match(stdout, /^ {2}REST {2}http:\/\/127\.0\.0\.1:(\d+) {2}listening on 0\.0\.0\.0:\1 \(all interfaces\)/m);
      assert.match(stdout, /^ {2}gRPC {2}127\.0\.0\.1:(\d+) {2}listening on 0\.0\.0\.0:\1 \(all interfaces\)$/m);
    } finally {
      child.kill('SIGINT');
      await once(child, 'exit');
    }
  });
});

describe('inflow --kafka auto and inflow topics create', () => {
  let dir: string;
  /** INFLOW_BROKER_HOME as `inflow kafka up` leaves it, naming the test broker. */
  let home: NodeJS.ProcessEnv;
  const suffix = `${process.pid}-${Date.now()}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inflow-topics-'));
    if (broker) {
      const state = {
        pid: process.pid,
        bootstrapServers: broker.join(','),
        dataDir: dir,
        logFile: join(dir, 'log'),
        startedAt: new Date().toISOString(),
      };
      await writeFile(join(dir, 'broker.json'), JSON.stringify(state));
    }
    home = { INFLOW_BROKER_HOME: dir };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('says how to start the local broker when --kafka auto finds none', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'inflow-no-broker-'));
    try {
      const r = await inflow(['topics', 'create', '--models-topic', 'x', '--kafka', 'auto'], { env: { INFLOW_BROKER_HOME: empty } });
      assert.equal(r.code, 3);
      assert.equal(
        r.stderr,
        'inflow: --kafka auto: no local Kafka broker is running; start one with "inflow kafka up" (or give --kafka host:port)\n',
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it("creates a pipeline's topics with the partitions asked for and its models topic compacted, then leaves them", {
    skip: noBroker,
  }, async () => {
    const file = join(dir, 'pipeline.yaml');
    await writeFile(
      file,
      `applicationId: fh-${suffix}
kafka: { bootstrapServers: [127.0.0.1:1] }
models:
  local: { embedded: { modelRepository: ${join(ROOT, 'models', 'repository')}, modelsTopic: fh-models-${suffix} } }
pipeline:
  - source: { topic: fh-in-${suffix}, key: string, value: json }
  - predict: { model: digits-mlp, using: local, inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }, outputTensor: label }
  - to: { topic: fh-out-${suffix} }
`,
    );
    // The file names an unreachable cluster: --kafka auto (the local broker) wins.
    const created = await inflow(['topics', 'create', file, '--partitions', '4', '--kafka', 'auto', '--json'], { env: home });
    assert.equal(created.code, 0, created.stderr);
    const report = JSON.parse(created.stdout) as {
      kafka: string;
      topics: Array<{ topic: string; partitions: number; configs: object; status: string }>;
    };
    assert.equal(report.kafka, broker?.join(','));
    assert.deepEqual(
      report.topics.map((t) => [t.topic, t.partitions, t.configs, t.status]),
      [
        [`fh-in-${suffix}`, 4, {}, 'created'],
        [`fh-out-${suffix}`, 4, {}, 'created'],
        [`fh-${suffix}-dlq`, 4, {}, 'created'],
        [`fh-models-${suffix}`, 1, { 'cleanup.policy': 'compact' }, 'created'],
      ],
    );
    const admin = new Admin({ clientId: 'inflow-first-hour-test', bootstrapBrokers: broker ?? [] });
    try {
      const topics = await admin.listTopics();
      for (const t of [`fh-in-${suffix}`, `fh-out-${suffix}`, `fh-${suffix}-dlq`, `fh-models-${suffix}`]) assert.ok(topics.includes(t), t);
      const [models, input] = await admin.describeConfigs({
        resources: [
          { resourceType: ConfigResourceTypes.TOPIC, resourceName: `fh-models-${suffix}`, configurationKeys: ['cleanup.policy'] },
          { resourceType: ConfigResourceTypes.TOPIC, resourceName: `fh-in-${suffix}`, configurationKeys: ['cleanup.policy'] },
        ],
      });
      assert.equal(models?.configs.find((c) => c.name === 'cleanup.policy')?.value, 'compact');
      assert.equal(input?.configs.find((c) => c.name === 'cleanup.policy')?.value, 'delete');
    } finally {
      await admin.close();
    }
    const again = await inflow(['topics', 'create', file, '--partitions', '8', '--kafka', 'auto'], { env: home });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^fh-in-${suffix} +4 +- +exists +pipeline fh-${suffix}: input$`, 'm'));
  });

  it('names the command that creates the topics a pipeline misses', { skip: noBroker }, async () => {
    const file = join(dir, 'missing.yaml');
    const yaml = (await readFile(join(ROOT, 'examples', 'pipelines', 'digits-embedded.yaml'), 'utf8'))
      .replace(/modelRepository: \S+/, `modelRepository: ${join(ROOT, 'models', 'repository')}`)
      .replaceAll('topic: digits', `topic: fh-missing-${suffix}`);
    await writeFile(file, yaml);
    const r = await inflow(['stream', file, '--kafka', 'auto'], { env: home });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^inflow: topics missing: fh-missing-${suffix}.*; inflow topics create ${file} --kafka ${broker?.join(',')} creates them$`,
        'm',
      ),
    );
  });

  it("runs the README's models commands with --kafka auto, and its split does not warn", { skip: noBroker }, async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const lines = readme.split('\n').filter((l) => /^inflow models /.test(l));
    assert.ok(
      lines.some((l) => l.includes(' split ')),
      'the README shows a split',
    );
    const topic = `fh-readme-models-${suffix}`;
    for (const line of lines) {
      const args = line.split('#')[0]?.trim().split(/\s+/).slice(1) ?? [];
      assert.ok(args.includes('auto'), `${line}: uses --kafka auto`);
      const r = await inflow([...args, '--topic', topic], { env: home });
      assert.deepEqual([r.code, r.stderr], [0, ''], line);
    }
  });
});
