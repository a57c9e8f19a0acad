/**
 * `inflow stream` and `inflow validate`: the process as a user runs it (dry run, errors, exit
 * codes), and the command's run loop in-process on the in-process log with a test inferencer.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { streamCommand } from '../src/cli/stream-command.ts';
import type { InflowError } from '../src/errors.ts';
import { createMemoryClient } from '../src/kafka/index.ts';
import { jsonSerde } from '../src/kafka/serdes.ts';
import type { ConsumedRecord } from '../src/kafka/types.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { createTestInferencer } from '../src/streams/testing/test-inferencer.fixture.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'inflow.js');

async function inflow(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A pipeline over the test inferencer's "double" model (the embedded source is replaced in-process). */
const PIPELINE = (policy: string) => `
applicationId: doubler
errors: { policy: ${policy} }
limits: { commitIntervalMs: 10, lagIntervalMs: 0 }
models:
  local: { embedded: { modelRepository: repo } }
pipeline:
  - source: { topic: numbers, key: string }
  - predict: { model: double, using: local, inputs: { x: { field: x } }, outputs: { y: { tensor: y } } }
  - to: { topic: doubled }
`;

describe('inflow stream', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inflow-cli-stream-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--dry-run validates the example and prints the pipeline and its topology', async () => {
    const { code, stdout, stderr } = await inflow(['stream', 'examples/pipelines/digits-embedded.yaml', '--kafka', 'memory', '--dry-run']);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '');
    assert.match(stdout, /^Pipeline digits-scorer \(exactly-once, failed records → digits-dlq\)\n/);
    assert.match(
      stdout,
      /\nTopology\n {2}Sub-topology: 0 \(tasks 0_<partition> over \[digits\]\)\n {4}source {4}SOURCE-0000 \(topics: \[digits\]\)\n/,
    );
    assert.match(stdout, /predict {3}predict-digit \(model: digits-mlp@1, maxBatch: 64, maxDelayMs: 2, inferencer: local\)/);
    assert.match(stdout, /sink {6}SINK-0007 \(topic: digits-unscorable\)/);
  });

  it('answers a bad file with exit code 2 and one line naming the file and the field', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, PIPELINE('dlq').replace('using: local', 'using: locl'));
    const { code, stdout, stderr } = await inflow(['stream', file, '--dry-run']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(
      stderr,
      `inflow: invalid configuration in ${file}: pipeline.1.predict.using: unknown model source "locl"; expected a name under models: (local)\n`,
    );
    const missing = await inflow(['validate', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `inflow: config file ${join(dir, 'nope.yaml')} does not exist\n`);
    const kafka = await inflow(['stream', 'examples/pipelines/digits-remote.yaml', '--kafka', 'localhost', '--dry-run']);
    assert.equal(kafka.code, 2);
    assert.match(kafka.stderr, /^inflow: invalid configuration in --kafka: bootstrapServers\.0: expected "host:port"[^\n]*\n$/);
  });

  it('validate checks a file without running it; stream --kafka memory without --dry-run is refused', async () => {
    const ok = await inflow(['validate', 'examples/pipelines/digits-remote.yaml']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'examples/pipelines/digits-remote.yaml: valid pipeline "digits-scorer-remote" (6 nodes)\n');
    const memory = await inflow(['stream', 'examples/pipelines/digits-remote.yaml', '--kafka', 'memory']);
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /^inflow: the in-process log \(memory\) has no producers .* use --dry-run/);
    const help = await inflow(['stream', '--help']);
    assert.match(help.stdout, /Examples:\n {2}inflow stream examples\/pipelines\/digits-embedded\.yaml --dry-run/);
  });

  it('runs a pipeline until stopped, then drains, commits and prints the final counts', async () => {
    const file = join(dir, 'run.yaml');
    await writeFile(file, PIPELINE('dlq'));
    const client = createMemoryClient();
    await client.admin().createTopics(['numbers', 'doubled', 'doubler-dlq'].map((topic) => ({ topic, partitions: 2 })));
    const json = jsonSerde();
    const producer = client.producer();
    await producer.send([1, 2, 3, -4, 5].map((x) => ({ topic: 'numbers', key: Buffer.from(`k${x}`), value: json.serialize({ x: [x] }) })));
    const stop = new AbortController();
    const lines: string[] = [];
    const inferencer = createTestInferencer();
    const command = streamCommand({ file, describe: true }, (l) => lines.push(l), {
      client,
      signal: stop.signal,
      statusIntervalMs: 3_600_000,
      logger: silentLogger,
      deps: { createLocalInference: async () => inferencer },
    });
    const reader = client.consumer({ groupId: 'reader', autoOffsetReset: 'earliest' });
    await reader.subscribe(['doubled']);
    const out: ConsumedRecord[] = [];
    // poll() waits for records (bounded): no sleeping; the run loop fills the topic meanwhile.
    for (let i = 0; i < 50 && out.length < 4; i++) out.push(...(await reader.poll({ maxRecords: 100, timeoutMs: 200 })));
    await reader.close();
    stop.abort();
    await command;
    await client.close();
    assert.deepEqual(
      out.map((r) => json.deserialize(r.value)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { x: [1], y: 2 },
        { x: [2], y: 4 },
        { x: [3], y: 6 },
        { x: [5], y: 10 },
      ],
    );
    assert.match(lines[0] ?? '', /^Pipeline doubler \(at-least-once, failed records → doubler-dlq\)/);
    assert.match(lines[1] ?? '', /^pipeline doubler running \(at-least-once\): numbers → doubled; Ctrl-C stops$/);
    assert.equal(lines[2], 'stopping (abort): draining in-flight records, committing…');
    assert.match(
      lines[3] ?? '',
      /^stopped\. in 5 \((?:\d+\/s over \d+ s|-\/s)\) {2}out 4 {2}dlq 1 {2}in-flight 0 {2}lag 0 {2}batch mean \d+\.\d$/,
    );
    assert.equal(lines.length, 4);
  });

  it('keeps the state stores under --state-dir (over the file’s state.dir), and refuses a path that is not a directory', async () => {
    const file = join(dir, 'stateful.yaml');
    await writeFile(
      file,
      `
applicationId: counter
limits: { commitIntervalMs: 10, lagIntervalMs: 0 }
state: { dir: file-state }
pipeline:
  - source: { topic: clicks, key: string }
  - aggregate: { aggregations: { n: count } }
  - to: { topic: clicks-per-key }
`,
    );
    const client = createMemoryClient();
    await client.admin().createTopics(['clicks', 'clicks-per-key', 'counter-dlq'].map((topic) => ({ topic, partitions: 1 })));
    const json = jsonSerde();
    await client.producer().send(['a', 'b', 'a'].map((k) => ({ topic: 'clicks', key: Buffer.from(k), value: json.serialize({}) })));
    const stateDir = join(dir, 'flag-state');
    const stop = new AbortController();
    const command = streamCommand({ file, stateDir }, () => undefined, {
      client,
      signal: stop.signal,
      statusIntervalMs: 3_600_000,
      logger: silentLogger,
    });
    const reader = client.consumer({ groupId: 'reader', autoOffsetReset: 'earliest' });
    await reader.subscribe(['clicks-per-key']);
    const out: ConsumedRecord[] = [];
    for (let i = 0; i < 50 && out.length < 3; i++) out.push(...(await reader.poll({ maxRecords: 100, timeoutMs: 200 })));
    await reader.close();
    stop.abort();
    await command;
    assert.equal(out.length, 3, 'every update was emitted');
    const tasks = await readdir(join(stateDir, 'counter'));
    assert.deepEqual(tasks, ['0_0'], 'the task’s stores are on disk under --state-dir');
    const stores = await readdir(join(stateDir, 'counter', '0_0'));
    assert.ok(stores.length > 0, 'the aggregate’s store is there');
    assert.ok(
      (await readdir(join(stateDir, 'counter', '0_0', stores[0] as string))).includes('.checkpoint'),
      'closed cleanly with a checkpoint',
    );
    await assert.rejects(stat(join(dir, 'file-state')), { code: 'ENOENT' }, 'the flag wins over the file’s state.dir');

    const notADir = join(dir, 'plain-file');
    await writeFile(notADir, 'x');
    await assert.rejects(
      streamCommand({ file, stateDir: notADir }, () => undefined, { client, signal: stop.signal, logger: silentLogger }),
      (e: InflowError) => e.code === 'INVALID_ARGUMENT' && /--state-dir ".*plain-file" exists and is not a directory/.test(e.message),
    );
    await client.close();
  });

  it('serves /metrics, /healthz and /readyz with --metrics-port while the pipeline runs', async () => {
    const file = join(dir, 'probes.yaml');
    await writeFile(file, PIPELINE('dlq'));
    const client = createMemoryClient();
    await client.admin().createTopics(['numbers', 'doubled', 'doubler-dlq'].map((topic) => ({ topic, partitions: 1 })));
    const stop = new AbortController();
    const lines: string[] = [];
    const command = streamCommand({ file, metricsPort: '0' }, (l) => lines.push(l), {
      client,
      signal: stop.signal,
      statusIntervalMs: 3_600_000,
      logger: silentLogger,
      deps: { createLocalInference: async () => createTestInferencer() },
    });
    try {
      const deadline = Date.now() + 10_000;
      while (!lines.some((l) => l.startsWith('pipeline doubler running')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      const port = Number(/metrics and probes on :(\d+)/.exec(lines.join('\n'))?.[1]);
      assert.ok(port > 0, lines.join('\n'));
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: res.status, text: await res.text() };
      };
      assert.deepEqual(await get('/healthz'), { status: 200, text: 'ok\n' });
      assert.deepEqual(await get('/readyz'), { status: 200, text: 'ready\n' });
      const metrics = await get('/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^# HELP inflow_stream_records_in_total/m);
      assert.equal((await get('/nope')).status, 404);
    } finally {
      stop.abort();
      await command;
      await client.close();
    }
  });

  it('stops on a fatal runner error with that error (policy fail), after printing the counts', async () => {
    const file = join(dir, 'fail.yaml');
    await writeFile(file, PIPELINE('fail'));
    const client = createMemoryClient();
    await client.admin().createTopics(['numbers', 'doubled'].map((topic) => ({ topic, partitions: 1 })));
    const json = jsonSerde();
    await client.producer().send([{ topic: 'numbers', key: null, value: json.serialize({ x: [-1] }) }]);
    const lines: string[] = [];
    await assert.rejects(
      streamCommand({ file }, (l) => lines.push(l), {
        client,
        signal: new AbortController().signal,
        logger: silentLogger,
        deps: { createLocalInference: async () => createTestInferencer() },
      }),
      { code: 'INVALID_ARGUMENT', message: /^record numbers\/0@0: predict failed at node "PREDICT-0001": row 0: x must be ≥ 0$/ },
    );
    await client.close();
    assert.match(lines.at(-1) ?? '', /^failed\. in 1 /);
  });
});
