/**
 * Footprint of the edge agent: RSS and CPU of the agent process (all its threads, from /proc) at
 * idle and under a steady device load, against a real Mosquitto and, with --kafka, forwarding
 * readings and predictions to Kafka. The load generator runs in this process, not the agent's.
 *
 * Usage: node deploy/edge/measure-footprint.ts [--exe dist/edge-sea/inflow-edge-linux-x64]
 *          [--kafka 127.0.0.1:9092] [--rate 1000] [--seconds 20] [--idle-seconds 10]
 * Without --exe the agent runs as `node bin/inflow.js edge` (TypeScript sources).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createKafkaClient } from '../../src/kafka/index.ts';
import {
  collect,
  createTopics,
  deviceMessage,
  digitsReference,
  digitsRepository,
  mqttClient,
  ROOT,
  startMosquitto,
  uniqueName,
} from '../../test/edge/edge-harness.ts';

const { values } = parseArgs({
  options: {
    exe: { type: 'string' },
    kafka: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    'idle-seconds': { type: 'string', default: '10' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const idleSeconds = Number(values['idle-seconds']);
const TICKS = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux

/** CPU seconds (user + system, every thread) and RSS (KiB) of a process. */
function sample(pid: number): { cpu: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpu, rssKiB: Number(rss) };
}

/** Samples every 250 ms for `ms`; CPU as % of one core over the window, RSS mean and max in MiB. */
async function window(pid: number, ms: number, during?: () => Promise<void>): Promise<{ cpuPct: number; rssMeanMiB: number; rssMaxMiB: number }> {
  const start = sample(pid);
  const t0 = performance.now();
  const rss: number[] = [];
  const timer = setInterval(() => rss.push(sample(pid).rssKiB), 250);
  await Promise.all([during?.(), new Promise((resolve) => setTimeout(resolve, ms))]);
  clearInterval(timer);
  const end = sample(pid);
  const elapsed = (performance.now() - t0) / 1000;
  rss.push(end.rssKiB);
  return {
    cpuPct: (100 * (end.cpu - start.cpu)) / elapsed,
    rssMeanMiB: rss.reduce((a, b) => a + b, 0) / rss.length / 1024,
    rssMaxMiB: Math.max(...rss) / 1024,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'inflow-edge-footprint-'));
const mosquitto = await startMosquitto();
let agent: ChildProcess | undefined;
const repository = await digitsRepository();
try {
  const topics = { readings: uniqueName('fp-readings'), predictions: uniqueName('fp-predictions') };
  if (values.kafka) {
    const client = createKafkaClient({ bootstrapServers: [values.kafka], clientId: 'edge-footprint' });
    await createTopics(client, Object.values(topics));
    await client.close();
  }
  const config = {
    agentId: 'footprint',
    mqtt: { url: mosquitto.url, subscriptions: [{ topic: 'devices/+/digits', qos: 1 }] },
    device: { topicLevel: 1 },
    messageIdField: 'seq',
    model: {
      repository,
      name: 'digits-mlp',
      inputs: { input: { field: 'pixels', shape: [64] } },
      outputs: { label: { tensor: 'label' }, probabilities: { tensor: 'probabilities' } },
    },
    publish: { predictions: { topic: 'predictions/{device}' } },
    ...(values.kafka ? { kafka: { bootstrapServers: [values.kafka], clientId: 'edge-footprint' }, forward: topics } : {}),
    outbox: { path: join(dir, 'outbox') },
  };
  writeFileSync(join(dir, 'agent.yaml'), JSON.stringify(config));
  let command = process.execPath;
  let args = [join(ROOT, 'bin', 'inflow.js'), 'edge', join(dir, 'agent.yaml')];
  if (values.exe) {
    command = join(dir, 'inflow-edge');
    copyFileSync(values.exe, command);
    args = [join(dir, 'agent.yaml')];
  }
  let output = '';
  agent = spawn(command, args, { cwd: dir, env: { ...process.env, INFLOW_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  agent.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes('Ctrl-C stops')) {
    if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = agent.pid ?? 0;
  const afterStart = sample(pid);
  await new Promise((resolve) => setTimeout(resolve, 2000)); // let start-up work (JIT, GC) settle
  const idle = await window(pid, idleSeconds * 1000);

  const ref = await digitsReference();
  const [device, watcher] = await Promise.all([mqttClient(mosquitto.url), mqttClient(mosquitto.url)]);
  const predictions = await collect(watcher, 'predictions/+');
  const total = rate * seconds;
  let sent = 0;
  // Paced: every 10 ms the messages due by then, QoS 1.
  const load = async (): Promise<void> => {
    const t0 = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      const batch: Promise<unknown>[] = [];
      for (; sent < due; sent++) {
        const m = deviceMessage(ref, sent);
        batch.push(device.publishAsync(m.topic, m.payload, { qos: 1 }));
      }
      await Promise.all(batch);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const busy = await window(pid, seconds * 1000, load);
  await predictions.until(total, 60_000);
  await Promise.all([device.endAsync(), watcher.endAsync()]);
  const what = values.exe ? `single executable ${values.exe}` : 'node bin/inflow.js edge (TypeScript sources)';
  console.log(`edge agent footprint — ${what}; Kafka forwarding ${values.kafka ? 'on' : 'off'}`);
  console.log(`  after start: RSS ${(afterStart.rssKiB / 1024).toFixed(0)} MiB`);
  console.log(`  idle ${idleSeconds} s: CPU ${idle.cpuPct.toFixed(1)} % of one core, RSS mean ${idle.rssMeanMiB.toFixed(0)} MiB (max ${idle.rssMaxMiB.toFixed(0)})`);
  console.log(
    `  ${rate} msg/s for ${seconds} s (${total} messages, all ${predictions.messages.length} predictions received): CPU ${busy.cpuPct.toFixed(1)} % of one core, RSS mean ${busy.rssMeanMiB.toFixed(0)} MiB (max ${busy.rssMaxMiB.toFixed(0)})`,
  );
  agent.kill('SIGTERM');
} finally {
  agent?.kill('SIGKILL');
  await mosquitto.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(repository, { recursive: true, force: true });
}
