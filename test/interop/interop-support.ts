/**
 * What the interop suites share: the official-client virtualenv (setup-venv.sh) and `inflow serve`
 * as a user runs it (a real process; its REST and gRPC addresses read from its banner).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const ROOT = join(import.meta.dirname, '..', '..');
export const HERE = import.meta.dirname;
const BIN = join(ROOT, 'bin', 'inflow.js');

/**
 * The python of the official-client virtualenv; undefined (the suite skips, loudly) when it cannot
 * be built outside CI. In CI a failure to build it fails the suite.
 */
export async function interopPython(): Promise<string | undefined> {
  try {
    const { stdout } = await run('bash', [join(HERE, 'setup-venv.sh')], { timeout: 900_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim().split('\n').at(-1);
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    process.stderr.write(`\n!!! interop suite SKIPPED: cannot build the official-client virtualenv: ${(error as Error).message}\n\n`);
    return undefined;
  }
}

/** Runs a script of test/interop with the venv's python and parses the JSON it prints. */
export async function runClient<T>(python: string, script: string, job: unknown, timeoutMs = 180_000): Promise<T> {
  const { stdout } = await run(python, [join(HERE, script), JSON.stringify(job)], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as T;
}

/** `inflow serve` running as a child process. */
export interface ServeProcess {
  /** `host:port` of REST and gRPC. */
  rest: string;
  grpc: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM, and resolves once it exited. */
  stop(): Promise<void>;
}

/** Starts `inflow serve --model-repository <repository>` on free ports with `env` added. */
export async function startServe(repository: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<ServeProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'serve', '--model-repository', repository, '--host', '127.0.0.1', '--rest-port', '0', '--grpc-port', '0', ...args],
    { cwd: ROOT, env: { ...process.env, INFLOW_LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const { rest, grpc } = await new Promise<{ rest: string; grpc: string }>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const r = /REST {2}http:\/\/(\S+)/.exec(text)?.[1];
      const g = /gRPC {2}(\S+)/.exec(text)?.[1];
      if (r && g) resolve({ rest: r, grpc: g });
    });
    child.once('exit', (code) => reject(new Error(`inflow serve exited (${code}): ${text}`)));
  });
  return {
    rest,
    grpc,
    output: () => text,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A peer model server (MLServer, KServe) running from its PyPI package. */
export interface PeerServer {
  /** `host:port` of REST and gRPC. */
  rest: string;
  grpc: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * The python of a peer's virtualenv (bench/peers/setup-python.sh: MLServer 1.7.1 or KServe 0.21,
 * each on onnxruntime 1.30); undefined outside CI when it cannot be built.
 */
export async function peerPython(peer: 'mlserver' | 'kserve'): Promise<string | undefined> {
  try {
    const { stdout } = await run('bash', [join(ROOT, 'bench', 'peers', 'setup-python.sh'), peer], {
      timeout: 900_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout.trim().split('\n').at(-1);
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    process.stderr.write(`\n!!! ${peer} peer SKIPPED: cannot build its virtualenv: ${(error as Error).message}\n\n`);
    return undefined;
  }
}

/**
 * Starts MLServer or KServe serving `model` (an ONNX file) under `name` with the peer scripts the
 * benchmarks use (bench/peers/python), and resolves once `GET /v2/models/<name>/ready` answers 200.
 */
export async function startPeer(peer: 'mlserver' | 'kserve', python: string, name: string, model: string): Promise<PeerServer> {
  const scripts = join(ROOT, 'bench', 'peers', 'python');
  const [rest, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
  const args =
    peer === 'mlserver'
      ? [join(scripts, 'mlserver_start.py'), `${rest}`, `${grpc}`, `${metrics}`, '1', `${name}=${model}`]
      : [join(scripts, 'kserve_onnx.py'), `${rest}`, `${grpc}`, `${name}=${model}`];
  const child = spawn(python, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const append = (chunk: Buffer): void => {
    text = (text + chunk.toString()).slice(-16_384);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async (): Promise<void> => {
    if (exited || child.pid === undefined) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid, 'SIGTERM'); // its process group: MLServer forks inference workers
    await gone;
  };
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (exited) throw new Error(`${peer} exited before it was ready:\n${text}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${peer} was not ready within 180 s:\n${text}`);
    }
    const ready = await fetch(`http://127.0.0.1:${rest}/v2/models/${name}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 250)); // polls the condition (a server's start), not a fixed wait
  }
  return { rest: `127.0.0.1:${rest}`, grpc: `127.0.0.1:${grpc}`, stop };
}
