/**
 * A real OpenTelemetry Collector for the tracing tests: test/otel/collector is a minimal
 * distribution (OTLP receiver, file exporter) built with `go build` from the Go module proxy into
 * node_modules/.cache/inflow-otelcol/ once (Go's module and build caches make later builds
 * quick; `.ci/run` builds it before the tests). The global setup starts one for the whole run:
 * OTLP/HTTP on a free loopback port, every span it receives appended as OTLP JSON lines to one
 * file. Test files find it through INFLOW_OTELCOL_ENDPOINT and INFLOW_OTELCOL_FILE.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const source = join(root, 'test/otel/collector');
/** Where the collector binary is built (ignored by git, like all of node_modules). */
export const OTELCOL_BIN = join(root, 'node_modules/.cache/inflow-otelcol/inflow-otelcol');

/** A running collector. */
export interface LocalCollector {
  /** OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (exporters append /v1/traces). */
  readonly endpoint: string;
  /** The file the collector appends received spans to (one OTLP JSON document per line). */
  readonly file: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Builds the collector when its binary is missing or older than its sources; throws when Go is absent. */
export async function buildCollector(): Promise<string> {
  const newest = Math.max(...['main.go', 'go.mod', 'go.sum'].map((f) => statSync(join(source, f)).mtimeMs));
  if (existsSync(OTELCOL_BIN) && statSync(OTELCOL_BIN).mtimeMs >= newest) return OTELCOL_BIN;
  await mkdir(join(OTELCOL_BIN, '..'), { recursive: true });
  try {
    await run('go', ['build', '-buildvcs=false', '-trimpath', '-o', OTELCOL_BIN, '.'], {
      cwd: source,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('Go is not installed (the OpenTelemetry Collector is built with `go build`)', { cause: e });
    throw new Error(`go build of the OpenTelemetry Collector failed: ${e.stderr ?? e.message}`, { cause: e });
  }
  return OTELCOL_BIN;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      ok(true);
    });
    socket.once('error', () => ok(false));
  });
}

/** Starts the collector with its files in `dir`; resolves once its OTLP port accepts connections. */
export async function startLocalCollector(dir: string): Promise<LocalCollector> {
  const bin = await buildCollector();
  const port = await freePort();
  const file = join(dir, 'otelcol-spans.jsonl');
  const config = join(dir, 'otelcol.yaml');
  writeFileSync(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${port}`,
      'exporters:',
      '  file:',
      `    path: ${JSON.stringify(file)}`,
      '    flush_interval: 50ms',
      'service:',
      '  telemetry:',
      // No self-metrics server (it would take port 8888, shared by everyone on the machine).
      '    metrics:',
      '      level: none',
      '    logs:',
      '      level: warn',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [file]',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(bin, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the OpenTelemetry Collector exited with ${child.exitCode}: ${stderr}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the OpenTelemetry Collector did not listen on ${port} within 60 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    file,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
