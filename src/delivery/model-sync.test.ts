import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { parse } from 'yaml';
import { InflowError } from '../errors.ts';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import type { KafkaAdmin, KafkaClient } from '../kafka/types.ts';
import { Header, parseKey } from './delivery-format.ts';
import { eventLog, flipByte, tamperingClient } from './fixtures/tamper.ts';
import { createModelSync, type ModelSync, type ModelSyncOptions } from './model-sync.ts';
import { deleteModelVersion, publishControl } from './publish-control.ts';
import { publishModel } from './publish-model.ts';
import { STAGING_DIR } from './staging-area.ts';

const TOPIC = 'models';
const ONNX = join(import.meta.dirname, '..', '..', 'models', 'repository', 'digits-mlp', '1', 'model.onnx');
const CONFIG = 'platform: onnx\nversionPolicy: { all: true }\nlabels: { stable: 1 }\nruntime: { file: model.onnx }\n';
/** 21 005 bytes in 4 KiB chunks: 6 chunk records. */
const CHUNK = 4096;

let repo: string;
let client: ReturnType<typeof createMemoryClient>;
let onnx: Buffer;
const running: ModelSync[] = [];

beforeEach(async () => {
  repo = await mkdtemp(join(tmpdir(), 'inflow-sync-'));
  client = createMemoryClient();
  onnx = await readFile(ONNX);
});
afterEach(async () => {
  // A test that failed half-way leaves its syncs running; their retry timers would keep the process alive.
  await Promise.all(running.splice(0).map((s) => s.close()));
  await client.close();
  await rm(repo, { recursive: true, force: true });
});

const files = (data = onnx) => [
  { path: 'model.onnx', data },
  { path: 'docs/notes.txt', data: Buffer.from('trained on load_digits\n') },
  { path: 'empty.txt', data: Buffer.alloc(0) },
];

function publish(version: number, via: KafkaClient = client, data = onnx) {
  return publishModel({ client: via, topic: TOPIC, model: 'digits-mlp', version, files: files(data), config: CONFIG, chunkSize: CHUNK });
}

function startSync(extra: Partial<ModelSyncOptions> = {}) {
  const log = eventLog();
  const sync = createModelSync({ client, topic: TOPIC, repository: repo, onEvent: log.onEvent, pollTimeoutMs: 50, ...extra });
  running.push(sync);
  return { sync, log };
}

const versionDir = (v: number) => join(repo, 'digits-mlp', String(v));
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
async function config(): Promise<Record<string, unknown>> {
  return parse(await readFile(join(repo, 'digits-mlp', 'config.yaml'), 'utf8')) as Record<string, unknown>;
}

/** An admin whose createTopics fails with KAFKA_UNREACHABLE while `down()` (the sync's first call of a session). */
function failingAdmin(admin: KafkaAdmin, down: () => boolean): KafkaAdmin {
  return {
    createTopics: (topics, o) =>
      down() ? Promise.reject(new InflowError('KAFKA_UNREACHABLE', 'cannot connect to 127.0.0.1:1')) : admin.createTopics(topics, o),
    deleteTopics: (topics) => admin.deleteTopics(topics),
    listTopics: () => admin.listTopics(),
    describeTopics: (topics) => admin.describeTopics(topics),
    listOffsets: (topic, at) => admin.listOffsets(topic, at),
    groupOffsets: (group, topics) => admin.groupOffsets(group, topics),
    groupLag: (group, topics) => admin.groupLag(group, topics),
    describeGroup: (group) => admin.describeGroup(group),
    deleteRecords: (offsets) => admin.deleteRecords(offsets),
    close: () => admin.close(),
  };
}

describe('model sync on the in-process log', () => {
  it('materializes a published version: the same bytes in <repo>/<model>/<version>/ and the config.yaml from the manifest', async () => {
    const result = await publish(1);
    assert.equal(result.chunks, 7, '6 chunks of model.onnx and 1 of notes.txt');
    const { sync } = startSync();
    await sync.start();
    try {
      assert.deepEqual(await readFile(join(versionDir(1), 'model.onnx')), onnx);
      assert.equal(await readFile(join(versionDir(1), 'docs', 'notes.txt'), 'utf8'), 'trained on load_digits\n');
      assert.equal((await stat(join(versionDir(1), 'empty.txt'))).size, 0);
      assert.deepEqual(await config(), {
        platform: 'onnx',
        versionPolicy: { all: true },
        labels: { stable: 1 },
        runtime: { file: 'model.onnx' },
      });
      const stats = sync.stats();
      assert.deepEqual([stats.caughtUp, stats.installed, stats.rejected, stats.chunks, stats.pending], [true, 1, 0, 7, 0]);
      assert.deepEqual(await readdir(join(repo, STAGING_DIR)), [], 'nothing left in staging');
    } finally {
      await sync.close();
    }
  });

  it('installs a version published while it runs, assembling a file of many chunks in order', async () => {
    const { sync, log } = startSync();
    await sync.start();
    try {
      // Every byte differs from its neighbours, so a chunk in the wrong place changes the file.
      const big = Buffer.from(Array.from({ length: 10 * CHUNK + 123 }, (_, i) => (i * 7 + (i >> 12)) & 0xff));
      const result = await publish(2, client, big);
      assert.equal(result.manifest.files.find((f) => f.path === 'model.onnx')?.chunks, 11);
      await log.next((e) => e.type === 'installed' && e.version === 2);
      assert.deepEqual(await readFile(join(versionDir(2), 'model.onnx')), big);
    } finally {
      await sync.close();
    }
  });

  it('rejects a version with a flipped byte in one chunk and keeps the previous version', async () => {
    await publish(1);
    const { sync, log } = startSync();
    await sync.start();
    try {
      const corrupt = tamperingClient(client, (r) => {
        const key = parseKey(r.key ?? null);
        // Files are published in path order: docs/notes.txt, empty.txt, model.onnx (file 2).
        return key?.kind === 'chunk' && key.version === 2 && key.file === 2 && key.n === 2 && r.value
          ? { ...r, value: flipByte(r.value, 100) }
          : r;
      });
      await publish(2, corrupt);
      const rejected = await log.next((e) => e.type === 'rejected');
      assert.equal(rejected.type === 'rejected' && rejected.version, 2);
      assert.match(
        rejected.type === 'rejected' ? rejected.reason : '',
        /^chunk 2 of file model\.onnx sha256 mismatch \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)$/,
      );
      assert.equal(await exists(versionDir(2)), false, 'the corrupt version never enters the repository');
      assert.deepEqual(await readFile(join(versionDir(1), 'model.onnx')), onnx);
      assert.deepEqual(sync.stats().lastRejection?.version, 2);
      assert.deepEqual(await readdir(join(repo, STAGING_DIR)), []);
    } finally {
      await sync.close();
    }
  });

  it('rejects a version whose manifest sha256 does not match the bytes, naming the file and both sums', async () => {
    await publish(1);
    const wrong = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind !== 'manifest' || !r.value) return r;
      const manifest = JSON.parse(r.value.toString()) as { files: Array<{ path: string; sha256: string }> };
      for (const f of manifest.files) if (f.path === 'model.onnx') f.sha256 = 'ab'.repeat(32);
      return { ...r, value: Buffer.from(JSON.stringify(manifest)) };
    });
    await publish(2, wrong);
    const { sync } = startSync();
    await sync.start();
    try {
      assert.equal(sync.stats().rejected, 1);
      assert.match(sync.stats().lastRejection?.reason ?? '', /^file model\.onnx sha256 mismatch \(expected (ab){32}, got [0-9a-f]{64}\)$/);
      assert.equal(await exists(versionDir(2)), false);
      assert.equal(await exists(versionDir(1)), true);
    } finally {
      await sync.close();
    }
  });

  it('rejects a manifest whose path leaves the version folder', async () => {
    const evil = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind !== 'manifest' || !r.value) return r;
      return { ...r, value: Buffer.from(r.value.toString().replace('"docs/notes.txt"', '"../../escaped.txt"')) };
    });
    await publish(1, evil);
    const { sync } = startSync();
    await sync.start();
    try {
      assert.match(sync.stats().lastRejection?.reason ?? '', /files\.0\.path: expected a relative path inside the version folder/);
      assert.equal(await exists(join(repo, '..', 'escaped.txt')), false);
      assert.equal(await exists(versionDir(1)), false);
    } finally {
      await sync.close();
    }
  });

  it('restarts from its committed offsets without reading a version again, and with lost offsets installs nothing twice', async () => {
    await publish(1);
    const first = startSync();
    await first.sync.start();
    await first.sync.close();
    const before = await stat(join(versionDir(1), 'model.onnx'));

    const again = startSync();
    await again.sync.start();
    await again.sync.close();
    const a = again.sync.stats();
    assert.deepEqual([a.caughtUp, a.chunks, a.installed, a.skipped], [true, 0, 0, 0], 'same group: nothing re-read');

    const fresh = startSync({ groupId: 'offsets-lost' });
    await fresh.sync.start();
    await fresh.sync.close();
    const f = fresh.sync.stats();
    assert.deepEqual([f.chunks, f.installed, f.skipped], [7, 0, 1], 'new group: read again, matched on disk, skipped');
    const after = await stat(join(versionDir(1), 'model.onnx'));
    assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'the installed file was not replaced');
  });

  it('moves a label and sets a split with control records, and keeps them over a later manifest and a restart', async () => {
    await publish(1);
    await publish(2);
    const { sync, log } = startSync();
    await sync.start();
    try {
      await publishControl({ client, topic: TOPIC, model: 'digits-mlp', labels: { canary: 2 } });
      await log.next((e) => e.type === 'control');
      assert.deepEqual((await config()).labels, { stable: 1, canary: 2 });
      await publishControl({
        client,
        topic: TOPIC,
        model: 'digits-mlp',
        routing: {
          split: [
            { version: 1, weight: 90 },
            { version: 2, weight: 10 },
          ],
        },
      });
      await log.next((e) => e.type === 'control' && e.control?.routing !== undefined);
      const c = await config();
      assert.deepEqual(
        [c.labels, c.routing],
        [
          { stable: 1, canary: 2 },
          {
            split: [
              { version: 1, weight: 90 },
              { version: 2, weight: 10 },
            ],
          },
        ],
      );
    } finally {
      await sync.close();
    }
    // v3's manifest config says `stable: 1` again; the control record stays in force.
    await publish(3);
    const restarted = startSync();
    await restarted.sync.start();
    await restarted.sync.close();
    assert.equal(restarted.sync.stats().installed, 1);
    assert.deepEqual((await config()).labels, { stable: 1, canary: 2 });
  });

  it('refuses to point a label at a version that was never published', async () => {
    await publish(1);
    await assert.rejects(publishControl({ client, topic: TOPIC, model: 'digits-mlp', labels: { stable: 7 } }), {
      code: 'FAILED_PRECONDITION',
      message: 'model "digits-mlp": version 7 is not published in topic "models" (published: 1)',
    });
  });

  it('does not commit past the chunks of a publish whose manifest has not come, and installs the version once it is published again', async () => {
    await publish(1);
    const dying = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind === 'manifest' && r.value && r.value.includes('"version":2')) throw new Error('publisher died');
      return r;
    });
    await assert.rejects(publish(2, dying), /publisher died/);
    const firstChunkOfV2 = BigInt(
      client.log.partition(TOPIC, 0).entries.findIndex((e) => {
        const key = parseKey(e.key);
        return key?.kind === 'chunk' && key.version === 2;
      }),
    );
    const { sync, log } = startSync({ groupId: 'holdback' });
    const admin = client.admin();
    await sync.start();
    assert.equal(sync.stats().pending, 1);
    assert.deepEqual(
      (await admin.groupOffsets('holdback', [TOPIC])).map((o) => o.offset),
      [firstChunkOfV2],
      'committed up to the first chunk of the unfinished publish',
    );
    await publish(2);
    await log.next((e) => e.type === 'installed' && e.version === 2);
    await sync.close(); // finishes the batch it applied, commit included
    assert.equal(log.events.filter((e) => e.type === 'abandoned').length, 1, 'the unfinished publish was replaced');
    assert.deepEqual(
      (await admin.groupOffsets('holdback', [TOPIC])).map((o) => o.offset),
      [client.log.partition(TOPIC, 0).endOffset],
    );
  });

  it('gives up a publish whose manifest never came after abandonAfterMs of record time', async () => {
    const old = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind === 'manifest') throw new Error('publisher died');
      return { ...r, timestamp: Date.now() - 2 * 3600_000 };
    });
    await assert.rejects(publish(1, old), /publisher died/);
    await publish(2);
    const { sync, log } = startSync({ abandonAfterMs: 3600_000 });
    await sync.start();
    try {
      const abandoned = await log.next((e) => e.type === 'abandoned');
      assert.deepEqual(abandoned.type === 'abandoned' && [abandoned.version, abandoned.reason], [
        1,
        'no manifest within 3600000 ms of its last chunk',
      ]);
      assert.deepEqual([sync.stats().pending, sync.stats().installed], [0, 1]);
    } finally {
      await sync.close();
    }
  });

  it('removes a version on its manifest tombstone, and refuses to delete one a label names', async () => {
    await publish(1);
    await publish(2);
    const { sync, log } = startSync();
    await sync.start();
    try {
      await assert.rejects(deleteModelVersion({ client, topic: TOPIC, model: 'digits-mlp', version: 1 }), {
        code: 'FAILED_PRECONDITION',
        message: 'model "digits-mlp" version 1 is still named by label "stable"; move it first',
      });
      const { tombstones } = await deleteModelVersion({ client, topic: TOPIC, model: 'digits-mlp', version: 2 });
      assert.equal(tombstones, 8);
      await log.next((e) => e.type === 'deleted' && e.version === 2);
      assert.equal(await exists(versionDir(2)), false);
      assert.equal(await exists(versionDir(1)), true);
    } finally {
      await sync.close();
    }
  });

  it('starts offline from the local repository when the topic is unreachable, keeps retrying, and catches up once it is back', async () => {
    await publish(1);
    const seed = startSync();
    await seed.sync.start();
    await seed.sync.close();
    await publish(2);
    let down = true;
    const flaky: KafkaClient = {
      kind: 'kafka',
      producer: (o) => client.producer(o),
      consumer: (o) => client.consumer(o),
      restoreConsumer: (o) => client.restoreConsumer(o),
      admin: () => failingAdmin(client.admin(), () => down),
      close: async () => undefined,
    };
    const { sync, log } = startSync({ client: flaky, startTimeoutMs: 0, retryMinMs: 1, retryMaxMs: 2 });
    await sync.start();
    try {
      assert.equal(sync.stats().caughtUp, false, 'start() returned without the topic');
      assert.equal(await exists(join(versionDir(1), 'model.onnx')), true, 'the local state is untouched');
      await log.next((e) => e.type === 'retrying');
      await log.next((e) => e.type === 'retrying' && log.events.filter((x) => x.type === 'retrying').length >= 2);
      assert.match(sync.stats().lastError ?? '', /^KAFKA_UNREACHABLE: cannot connect/);
      down = false;
      await sync.ready;
      await log.next((e) => e.type === 'installed' && e.version === 2);
      assert.equal(sync.stats().state, 'live');
    } finally {
      await sync.close();
    }
  });

  it('logs one line when the models topic goes away and one when it is back, not one per retry, and reports the state', async () => {
    await publish(1);
    let down = true;
    const flaky: KafkaClient = {
      kind: 'kafka',
      producer: (o) => client.producer(o),
      consumer: (o) => client.consumer(o),
      restoreConsumer: (o) => client.restoreConsumer(o),
      admin: () => failingAdmin(client.admin(), () => down),
      close: async () => undefined,
    };
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    const { sync, log } = startSync({ client: flaky, logger, startTimeoutMs: 0, retryMinMs: 1, retryMaxMs: 2 });
    await sync.start();
    try {
      await log.next(() => log.events.filter((x) => x.type === 'retrying').length >= 20);
      assert.equal(sync.stats().connection, 'disconnected');
      down = false;
      await sync.ready;
      assert.equal(sync.stats().connection, 'connected');
      const about = lines.filter((l) => /models topic|Kafka/.test(l.msg) && !/installing unsigned|not caught up within/.test(l.msg));
      assert.deepEqual(
        about.map((l) => [l.level, l.msg.replace(/after [\d.]+ s/, 'after N s')]),
        [
          [40, 'Kafka (models topic "models") unreachable; retrying with backoff until it is back'],
          [30, 'Kafka (models topic "models") reachable again after N s'],
          [30, 'model sync caught up with the models topic'],
        ],
      );
      assert.ok(sync.stats().errors >= 20, `${sync.stats().errors} failed tries counted`);
    } finally {
      await sync.close();
    }
  });

  it('reconnects after losing the topic mid-run and goes on installing', async () => {
    let failNext = false;
    const flaky: KafkaClient = {
      ...client,
      consumer(o) {
        const c = client.consumer(o);
        return {
          groupId: c.groupId,
          subscribe: (topics, l) => c.subscribe(topics, l),
          async poll(p) {
            if (!failNext) return c.poll(p);
            failNext = false;
            throw new InflowError('KAFKA_UNREACHABLE', 'connection reset');
          },
          commit: (offsets) => c.commit(offsets),
          committed: (parts) => c.committed(parts),
          pause: (parts) => c.pause(parts),
          resume: (parts) => c.resume(parts),
          paused: () => c.paused(),
          seek: (position) => c.seek(position),
          assignment: () => c.assignment(),
          close: () => c.close(),
        };
      },
    };
    await publish(1);
    const { sync, log } = startSync({ client: flaky, retryMinMs: 1 });
    await sync.start();
    failNext = true;
    await log.next((e) => e.type === 'retrying');
    await publish(2);
    await log.next((e) => e.type === 'installed' && e.version === 2);
    const s = sync.stats();
    assert.deepEqual([s.errors, s.installed, s.lastError], [1, 2, 'KAFKA_UNREACHABLE: connection reset']);
    await log.next((e) => e.type === 'caught-up' && log.events.filter((x) => x.type === 'caught-up').length === 2);
    assert.equal(sync.stats().state, 'live');
    await sync.close();
  });

  it('rejects ready with CANCELLED when closed before catching up', async () => {
    const never: KafkaClient = { ...client, admin: () => failingAdmin(client.admin(), () => true) };
    const { sync } = startSync({ client: never, startTimeoutMs: 0, retryMinMs: 60_000 });
    await sync.start();
    await sync.close();
    await assert.rejects(sync.ready, { code: 'CANCELLED' });
    assert.equal(sync.stats().state, 'closed');
  });

  it('ignores chunk records with broken headers and counts them', async () => {
    const noHeaders = tamperingClient(client, (r) =>
      parseKey(r.key ?? null)?.kind === 'chunk' ? { ...r, headers: (r.headers ?? []).filter(([k]) => k !== Header.SHA256) } : r,
    );
    await publish(1, noHeaders);
    const { sync } = startSync();
    await sync.start();
    try {
      const s = sync.stats();
      assert.deepEqual([s.ignored, s.installed, s.rejected], [7, 0, 1]);
      assert.match(s.lastRejection?.reason ?? '', /^no chunk of this publish was read/);
    } finally {
      await sync.close();
    }
  });
});
