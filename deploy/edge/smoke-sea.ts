/**
 * Smoke test of a single-executable edge agent (build-sea.sh --smoke): copies the executable to a
 * fresh folder, starts it there against a real Mosquitto (first start extracts the runtime and the
 * models), publishes digit messages, and checks each prediction against the reference; then
 * SIGTERM must exit 0. An arm64 executable on an x64 host runs under qemu-user-static with the
 * arm64 glibc/libstdc++ of a debootstrapped Debian (cached in <out>/arm64-rootfs) and an arm64
 * /proc/cpuinfo bound over the host's (onnxruntime's cpuinfo reads it, and the x86 one crashes it
 * under qemu-user; a qemu artefact, not a device issue).
 *
 * Usage: node deploy/edge/smoke-sea.ts <executable> <x64|arm64> <out folder>
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch as hostArch, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collect, digitsReference, mqttClient, publishDevices, startMosquitto } from '../../test/edge/edge-harness.ts';

const [exe, arch, out] = process.argv.slice(2);
if (!exe || !arch || !out) throw new Error('usage: node deploy/edge/smoke-sea.ts <executable> <x64|arm64> <out folder>');
const MESSAGES = 16;

/** A 64-bit ARM /proc/cpuinfo (Cortex-A72, as on a Raspberry Pi 4). */
const CPUINFO = Array.from(
  { length: 4 },
  (_, i) =>
    `processor\t: ${i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n`,
).join('\n');

function ensureRootfs(out: string): string {
  const rootfs = resolve(out, 'arm64-rootfs');
  if (!existsSync(join(rootfs, 'usr', 'lib', 'aarch64-linux-gnu', 'libstdc++.so.6'))) {
    console.log(`  debootstrap --foreign --arch=arm64 --variant=minbase bookworm ${rootfs} (once)`);
    execFileSync('debootstrap', ['--foreign', '--arch=arm64', '--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], {
      stdio: 'ignore',
    });
  }
  return rootfs;
}

const dir = mkdtempSync(join(tmpdir(), `inflow-edge-smoke-${arch}-`));
const mosquitto = await startMosquitto();
let agent: ChildProcess | undefined;
try {
  const binary = join(dir, 'inflow-edge');
  copyFileSync(exe, binary);
  writeFileSync(
    join(dir, 'agent.yaml'),
    [
      `agentId: smoke-${arch}`,
      `mqtt: { url: "${mosquitto.url}", subscriptions: [{ topic: "devices/+/digits" }] }`,
      'device: { topicLevel: 1 }',
      'messageIdField: seq',
      'model:',
      '  repository: models',
      '  name: digits-mlp',
      '  inputs: { input: { field: pixels, shape: [64] } }',
      '  outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }',
      'publish: { predictions: { topic: "predictions/{device}" } }',
      'outbox: { path: data }',
    ].join('\n'),
  );
  let command = binary;
  let args = [join(dir, 'agent.yaml')];
  if (arch !== hostArch()) {
    const rootfs = ensureRootfs(out);
    writeFileSync(join(dir, 'cpuinfo'), CPUINFO);
    command = 'unshare';
    args = [
      '-m',
      'sh',
      '-c',
      `mount --bind ${join(dir, 'cpuinfo')} /proc/cpuinfo && exec qemu-aarch64-static -L ${rootfs} -cpu cortex-a72 ${binary} ${join(dir, 'agent.yaml')}`,
    ];
  }
  const started = performance.now();
  let output = '';
  agent = spawn(command, args, { cwd: dir, env: { ...process.env, INFLOW_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  agent.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => agent?.once('exit', (code) => resolve(code)));
  const running = await Promise.race([
    new Promise<boolean>((resolve) => {
      const check = setInterval(() => {
        if (!output.includes('Ctrl-C stops')) return;
        clearInterval(check);
        resolve(true);
      }, 50);
      check.unref();
    }),
    exited.then(() => false),
    // Under qemu the first start takes seconds, not minutes; unref: the bound must not hold the process.
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300_000).unref()),
  ]);
  if (!running) throw new Error(`the ${arch} agent did not start:\n${output}`);
  const startMs = performance.now() - started;

  const ref = await digitsReference();
  const [device, watcher] = await Promise.all([mqttClient(mosquitto.url), mqttClient(mosquitto.url)]);
  const predictions = await collect(watcher, 'predictions/+');
  const sent = performance.now();
  await publishDevices(device, ref, 0, MESSAGES);
  await predictions.until(MESSAGES, 120_000);
  const answerMs = performance.now() - sent;
  for (const { value } of predictions.messages) {
    const seq = Number(String(value.id).split(':')[1]);
    const want = ref.labels[seq % ref.labels.length];
    if (value.label !== want) throw new Error(`message ${seq}: label ${String(value.label)}, expected ${String(want)}`);
  }
  await Promise.all([device.endAsync(), watcher.endAsync()]);
  agent.kill('SIGTERM');
  const code = await exited;
  agent = undefined;
  if (code !== 0) throw new Error(`SIGTERM: exit code ${String(code)}; output:\n${output}`);
  const first = predictions.messages[0]?.value;
  console.log(
    `  ${arch}: started (first start: extraction + model load) in ${(startMs / 1000).toFixed(1)} s; ${MESSAGES} predictions equal to the reference in ${answerMs.toFixed(0)} ms; e.g. ${JSON.stringify({ id: first?.id, label: first?.label, version: first?.version })}; SIGTERM → exit 0`,
  );
} finally {
  agent?.kill('SIGKILL');
  await mosquitto.stop();
  rmSync(dir, { recursive: true, force: true });
}
