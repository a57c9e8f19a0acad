/**
 * Child processes for the benchmarks: a service (a model server, a stream processor) started in
 * its own process group, optionally pinned to CPUs with taskset, waited for until an HTTP URL
 * answers or a line appears on its output, and stopped with its whole group; plus the CPU time of
 * a process tree read from /proc (what "CPU seconds per 1 k requests" is computed from).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** A started service. */
export interface Service {
  readonly name: string;
  readonly pid: number;
  /** Everything it printed so far (stdout and stderr, the last 64 KiB). */
  output(): string;
  /** User + system CPU seconds of the process and all its live descendants. */
  cpuSeconds(): Promise<number>;
  /** SIGTERM to the whole group, SIGKILL after `graceMs` (default 5000). */
  stop(graceMs?: number): Promise<void>;
}

export interface ServiceOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** taskset CPU list ("1", "0-1"); unset = not pinned. */
  readonly cpus?: string;
  /** Ready when a GET of this URL answers 2xx. */
  readonly readyUrl?: string;
  /** Ready when this text appears in its output. */
  readonly readyText?: string;
  /** Also append everything it prints to this file (kept for post-mortems). */
  readonly logFile?: string;
  /** Default 120 000 ms (the first MLServer or JVM start on a busy 2-core machine is slow). */
  readonly timeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts a service and resolves once it is ready; rejects with its output when it exits or times out first. */
export async function startService(o: ServiceOptions): Promise<Service> {
  const [command, args] = o.cpus === undefined ? [o.command, [...o.args]] : ['taskset', ['-c', o.cpus, o.command, ...o.args]];
  const child: ChildProcess = spawn(command, args, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    detached: true, // its own process group, so stop() reaches every process it forks
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const log = o.logFile === undefined ? undefined : createWriteStream(o.logFile, { flags: 'a' });
  const append = (chunk: Buffer): void => {
    text = (text + chunk.toString('utf8')).slice(-65_536);
    log?.write(chunk);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      log?.end();
      resolve();
    }),
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${o.name}: could not start ${o.command}`);
  const service: Service = {
    name: o.name,
    pid,
    output: () => text,
    cpuSeconds: () => treeCpuSeconds(pid),
    async stop(graceMs = 5000) {
      if (exited !== undefined) return;
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await exit;
      clearTimeout(timer);
      // Children that outlived the leader (a Triton server, MLServer's workers) get the group kill too.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // none left
      }
    },
  };
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  for (;;) {
    if (exited !== undefined) throw new Error(`${o.name} exited with ${exited} before it was ready:\n${text.slice(-3000)}`);
    if (o.readyText !== undefined && text.includes(o.readyText)) break;
    if (o.readyUrl !== undefined) {
      try {
        const res = await fetch(o.readyUrl, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.ok) break;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline) {
      await service.stop(1000);
      throw new Error(`${o.name} was not ready within ${o.timeoutMs ?? 120_000} ms:\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return service;
}

/** utime + stime of `root` and every live descendant, in seconds. */
export async function treeCpuSeconds(root: number): Promise<number> {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name (which may contain spaces): state ppid … utime(14) stime(15).
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // exited while listing
    }
  }
  let ticks = 0;
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    ticks += stats.get(pid)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === pid) queue.push(child);
  }
  return ticks / TICKS_PER_SECOND;
}

/** The 1-minute load average (/proc/loadavg), noted beside every measurement. */
export async function loadAverage(): Promise<number> {
  return Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]);
}
