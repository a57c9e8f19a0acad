/**
 * Model delivery on the real broker: a running embedded service whose repository starts empty
 * is fed by the model sync from a compacted topic. v1 becomes ready and answers; v2 takes over
 * (the time from publish() returning to the first answer by v2 is printed); a corrupted v3 is
 * rejected while v2 keeps serving; a restart comes back with v2 from disk without re-reading
 * the topic.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { parseKey } from '../../src/delivery/delivery-format.ts';
import { eventLog, flipByte, tamperingClient } from '../../src/delivery/fixtures/tamper.ts';
import { createModelSync, type ModelSync, publishModel } from '../../src/delivery/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../src/serving/local-inference.ts';
import type { InferResponse } from '../../src/serving/types.ts';
import { brokerOrSkip } from '../setup/broker.ts';

const bootstrap = brokerOrSkip();
const MODELS = join(import.meta.dirname, '..', '..', 'models');
const V1_DIR = join(MODELS, 'repository', 'digits-mlp', '1');

interface Sample {
  inputs: { input: { shape: [number, number]; data: number[] } };
  outputs: { label: { data: number[] } };
}

describe('model delivery over Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const topic = `inflow-models-it-${randomBytes(4).toString('hex')}`;
  let client: KafkaClient;
  let repo: string;
  let config: string;
  let sample: Sample;
  let service: LocalInference | undefined;
  let sync: ModelSync | undefined;
  const log = eventLog();

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'delivery-it' });
    repo = await mkdtemp(join(tmpdir(), 'inflow-delivery-it-'));
    config = await readFile(join(MODELS, 'repository', 'digits-mlp', 'config.yaml'), 'utf8');
    sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as Sample;
  });
  after(async () => {
    await sync?.close();
    await service?.close();
    const admin = client?.admin();
    await admin?.deleteTopics([topic]).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await rm(repo, { recursive: true, force: true });
  });

  const infer = (svc: LocalInference): Promise<InferResponse> =>
    svc.infer({
      model: 'digits-mlp',
      inputs: { input: { dtype: 'FP32', shape: [1, 64], data: Float32Array.from(sample.inputs.input.data.slice(0, 64)) } },
    });

  /** Infers until `version` answers (or the deadline passes); returns when it did, ms since the epoch of performance.now(). */
  async function firstAnswerBy(svc: LocalInference, version: number, deadlineMs: number): Promise<{ at: number; response: InferResponse }> {
    const deadline = performance.now() + deadlineMs;
    let last = 'no answer yet';
    while (performance.now() < deadline) {
      try {
        const response = await infer(svc);
        if (response.version === version) return { at: performance.now(), response };
        last = `answered by version ${response.version}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await delay(2);
    }
    assert.fail(`version ${version} did not answer within ${deadlineMs} ms (last: ${last})`);
  }

  const publish = (version: number, via = client) =>
    publishModel({ client: via, topic, model: 'digits-mlp', version, modelDir: V1_DIR, config, publisher: 'delivery-it' });

  it('serves v1 published into an empty repository, then v2, and says how long v2 took', async (t) => {
    service = await createLocalInference({ modelRepository: repo, load: loadServable, watch: true, pollMs: 100, settleMs: 50 });
    sync = createModelSync({ client, topic, repository: repo, onEvent: log.onEvent, startTimeoutMs: 60_000 });
    await sync.start();
    assert.equal(sync.stats().caughtUp, true);

    await publish(1);
    const v1 = await firstAnswerBy(service, 1, 30_000);
    assert.equal(Number(v1.response.outputs.label?.data[0]), sample.outputs.label.data[0], 'v1 predicts like Python onnxruntime');

    const publishStarted = performance.now();
    const result = await publish(2);
    const published = performance.now();
    const installed = log.next((e) => e.type === 'installed' && e.version === 2).then(() => performance.now());
    const v2 = await firstAnswerBy(service, 2, 30_000);
    assert.equal(Number(v2.response.outputs.label?.data[0]), sample.outputs.label.data[0]);
    const ms = (x: number): string => `${x.toFixed(0)} ms`;
    const line =
      `publish() of ${result.bytes} bytes in ${result.chunks} chunk(s) took ${ms(published - publishStarted)}; ` +
      `publish() returned → installed: ${ms((await installed) - published)}; → first inference by v2: ${ms(v2.at - published)}`;
    t.diagnostic(line);
    console.log(`model delivery: ${line}`);
  });

  it('rejects a corrupted v3 and keeps serving v2', async () => {
    assert.ok(service && sync);
    const corrupt = tamperingClient(client, (r) => {
      const key = parseKey(r.key ?? null);
      return key?.kind === 'chunk' && key.version === 3 && r.value ? { ...r, value: flipByte(r.value, 1000) } : r;
    });
    await publish(3, corrupt);
    const rejected = await log.next((e) => e.type === 'rejected' && e.version === 3);
    assert.match(
      rejected.type === 'rejected' ? rejected.reason : '',
      /^chunk 0 of file model\.onnx sha256 mismatch \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)$/,
    );
    await assert.rejects(stat(join(repo, 'digits-mlp', '3')), { code: 'ENOENT' });
    // Several refreshes of the watcher (pollMs 100) later, v2 still answers.
    for (let i = 0; i < 5; i++) {
      assert.equal((await infer(service)).version, 2);
      await delay(100);
    }
    assert.deepEqual(service.repository.available('digits-mlp'), [2]);
  });

  it('comes back after a restart with v2 from disk and does not re-read the topic', async () => {
    await sync?.close();
    await service?.close();
    sync = undefined;
    // Offline first: the service serves what is on disk before the sync is even started.
    service = await createLocalInference({ modelRepository: repo, load: loadServable, watch: true, pollMs: 100, settleMs: 50 });
    assert.equal((await infer(service)).version, 2);
    sync = createModelSync({ client, topic, repository: repo, startTimeoutMs: 60_000 });
    await sync.start();
    const stats = sync.stats();
    assert.deepEqual(
      [stats.caughtUp, stats.chunks, stats.installed, stats.skipped, stats.rejected],
      [true, 0, 0, 0, 0],
      'nothing read again',
    );
    assert.equal((await infer(service)).version, 2);
  });
});
