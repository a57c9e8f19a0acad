/**
 * Window-store interactive queries over HTTP on the real broker (issue 17 item 4): two pipeline
 * instances of one application share 4 partitions of a keyed click stream counted per key in
 * 10-second tumbling windows (the window store `clicks-10s`), each with the listener of
 * `inflow stream --metrics-port` (src/cli/stream-probes.ts) as its advertised query address.
 * `GET /v1/stores/clicks-10s/keys/{key}/windows?from=&to=` answers 200 with the committed windows
 * on the key's owner — equal to a reference computed here from the produced records — and 307 to
 * the owner (`Location` and body `owner`) on the other instance; following the redirect gives the
 * owner's answer. Same contract as key lookups (interactive-queries.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startStreamProbes, type StreamProbes } from '../../src/cli/stream-probes.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { partitionForKey } from '../../src/kafka/partitioner.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner } from '../../src/streams/index.ts';
import type { StoreQuery } from '../../src/streams/runtime/store-query.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, uniqueName, waitFor } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const PARTITIONS = 4;
const SIZE_MS = 10_000;
const T0 = 1_700_000_000_000;
const KEYS = Array.from({ length: 12 }, (_, i) => `card-${i}`);
/** Click times of key i: i + 1 clicks spread over the first minute, so every key has its own counts. */
const clicksOf = (i: number): number[] => Array.from({ length: i + 1 }, (_, j) => T0 + ((j * 7_919 + i * 1_237) % 60_000));

interface WindowJson {
  readonly start: number;
  readonly value: number;
}

/** The windows of key i starting in [from, to], counted here. */
function reference(i: number, from: number, to: number): WindowJson[] {
  const counts = new Map<number, number>();
  for (const t of clicksOf(i)) {
    const start = t - ((t - T0) % SIZE_MS);
    counts.set(start, (counts.get(start) ?? 0) + 1);
  }
  return [...counts]
    .filter(([start]) => start >= from && start <= to)
    .sort(([a], [b]) => a - b)
    .map(([start, value]) => ({ start, value }));
}

function windowedCount(input: string, output: string) {
  const b = createStreamsBuilder();
  b.stream(input, { key: stringSerde, value: jsonSerde() })
    .groupByKey()
    .windowedBy({ type: 'tumbling', sizeMs: SIZE_MS, graceMs: 600_000 })
    .count({ name: 'per-10s', store: 'clicks-10s' })
    .toStream()
    .map((r) => ({ key: `${r.key.key}@${r.key.start}`, value: r.value }))
    .to(output, { key: stringSerde, value: jsonSerde() });
  return b.build();
}

describe('window-store queries over HTTP across pipeline instances on Apache Kafka', {
  skip: bootstrap ? false : 'no Kafka broker',
}, () => {
  let client: KafkaClient;
  const runners: StreamsRunner[] = [];
  const probes: StreamProbes[] = [];

  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-window-iq' });
  });
  after(async () => {
    for (const r of runners) await r.close().catch(() => undefined);
    for (const p of probes) await p.close();
    await client?.close();
  });

  it("answers a key's committed windows on its owner and redirects (307) to the owner from the other instance", async () => {
    const input = uniqueName('wiq-in');
    const output = uniqueName('wiq-out');
    const applicationId = uniqueName('wiq-app');
    await createTopics(client, [input, output, `${applicationId}-dlq`], PARTITIONS);

    // The listener comes first (its port is the advertised address); it reads the runner's stores once that exists.
    const start = async (): Promise<{ runner: StreamsRunner; address: string }> => {
      const made: { runner?: StreamsRunner } = {};
      const stores = (): StoreQuery => (made.runner as StreamsRunner).stores;
      const lazy: StoreQuery = {
        storeNames: () => made.runner?.stores.storeNames() ?? [],
        get: (store, key) => stores().get(store, key),
        fetch: (store, key, from, to) => stores().fetch(store, key, from, to),
      };
      const listener = await startStreamProbes(
        0,
        '127.0.0.1',
        () => [],
        () => true,
        lazy,
      );
      probes.push(listener);
      const address = `127.0.0.1:${listener.port}`;
      const runner = createStreamsRunner(windowedCount(input, output), {
        client,
        applicationId,
        instanceId: `i-${listener.port}`,
        applicationServer: address,
        sessionTimeoutMs: 6000,
        lagIntervalMs: 0,
        commitIntervalMs: 100,
      });
      made.runner = runner;
      runners.push(runner);
      await runner.start();
      return { runner, address };
    };
    const instances = [await start(), await start()];
    await waitFor('both instances to hold partitions', () =>
      instances.every((i) => i.runner.stats().assigned.length === PARTITIONS / 2) ? true : undefined,
    );

    const producer = client.producer();
    await producer.send(
      KEYS.flatMap((key, i) =>
        clicksOf(i).map((timestamp) => ({ topic: input, key: Buffer.from(key), value: Buffer.from('{}'), timestamp })),
      ),
    );
    await producer.close();

    const ownerOf = (key: string) => {
      const p = partitionForKey(Buffer.from(key), PARTITIONS);
      const owner = instances.find((i) => i.runner.stats().assigned.some((tp) => tp.partition === p));
      assert.ok(owner, `no instance holds partition ${p}`);
      return owner;
    };
    const url = (address: string, key: string, from?: number, to?: number): string =>
      `http://${address}/v1/stores/clicks-10s/keys/${encodeURIComponent(key)}/windows` +
      (from === undefined ? '' : `?from=${from}&to=${to}`);
    const get = async (href: string) => {
      const res = await fetch(href, { redirect: 'manual' });
      return { status: res.status, location: res.headers.get('location'), body: (await res.json()) as Record<string, unknown> };
    };

    // Every key's windows, committed, on its owner (all time: no bounds).
    await waitFor('every key counted on its owner', async () => {
      for (const [i, key] of KEYS.entries()) {
        const answer = await get(url(ownerOf(key).address, key));
        if (answer.status !== 200 || JSON.stringify(answer.body.windows) !== JSON.stringify(reference(i, -Infinity, Infinity)))
          return undefined;
      }
      return true;
    });

    let redirects = 0;
    for (const [i, key] of KEYS.entries()) {
      const partition = partitionForKey(Buffer.from(key), PARTITIONS);
      const owner = ownerOf(key);
      const other = instances.find((x) => x !== owner) as (typeof instances)[number];
      // A range that cuts the key's windows: [T0 + 10 s, T0 + 40 s].
      const from = T0 + 10_000;
      const to = T0 + 40_000;
      const expected = reference(i, from, to);

      const onOwner = await get(url(owner.address, key, from, to));
      assert.equal(onOwner.status, 200, JSON.stringify(onOwner.body));
      assert.deepEqual(onOwner.body, { store: 'clicks-10s', key, partition, windows: expected });

      const elsewhere = await get(url(other.address, key, from, to));
      assert.equal(elsewhere.status, 307, JSON.stringify(elsewhere.body));
      assert.equal(elsewhere.body.owner, owner.address);
      assert.equal(elsewhere.body.partition, partition);
      assert.equal(elsewhere.location, url(owner.address, key, from, to));
      const followed = await get(elsewhere.location);
      assert.deepEqual(followed.body, onOwner.body, 'the redirect leads to the same answer');
      redirects++;
    }
    assert.equal(redirects, KEYS.length);
  });
});
