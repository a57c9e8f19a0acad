/**
 * `inflow kafka up|down --keep-data|restart|status` on a real broker of the test's own (never the
 * shared one): the data survives a stop and a restart, on the same address.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kafkaMain } from '../../src/cli/kafka-command.ts';
import { freePort } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { readToEnd } from '../streams/fixtures/streams-fixtures.ts';

const javaAvailable = brokerOrSkip() !== undefined;

describe('inflow kafka on a broker of its own', { skip: javaAvailable ? false : 'no Java for a broker of our own' }, () => {
  let home: string;
  let previous: string | undefined;
  const run = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await kafkaMain(
      [...argv, '--json'],
      (l) => out.push(l),
      (l) => err.push(l),
    );
    return { code, value: JSON.parse(out.join('') || err.join('')) as Record<string, unknown> };
  };
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'inflow-broker-home-'));
    previous = process.env.INFLOW_BROKER_HOME;
    process.env.INFLOW_BROKER_HOME = home;
  });
  after(async () => {
    await run('down');
    if (previous === undefined) delete process.env.INFLOW_BROKER_HOME;
    else process.env.INFLOW_BROKER_HOME = previous;
    await rm(home, { recursive: true, force: true });
  });

  it('stops with --keep-data and starts again with the same data on the same port; restart keeps it too; down deletes it', async () => {
    const port = await freePort();
    const up = await run('up', '--port', String(port));
    assert.equal(up.code, 0);
    assert.equal(up.value.bootstrapServers, `127.0.0.1:${port}`);
    assert.equal((await run('status')).code, 0);

    const client = createKafkaClient({ bootstrapServers: [`127.0.0.1:${port}`], clientId: 'kafka-cli-test' });
    try {
      await client.admin().createTopics([{ topic: 'kept', partitions: 1 }]);
      await client.producer().send([{ topic: 'kept', key: Buffer.from('k'), value: Buffer.from('before the stop') }]);
    } finally {
      await client.close();
    }

    const down = await run('down', '--keep-data');
    assert.equal(down.code, 0);
    const status = await run('status');
    assert.equal(status.code, 1, 'status exits 1 while the broker is down');
    assert.equal(status.value.dataDir, up.value.dataDir);

    const again = await run('up');
    assert.equal(again.code, 0);
    assert.equal(again.value.resumed, true);
    assert.equal(again.value.bootstrapServers, `127.0.0.1:${port}`);
    const restarted = await run('restart');
    assert.equal(restarted.value.resumed, true);
    assert.equal(restarted.value.bootstrapServers, `127.0.0.1:${port}`);

    const reader = createKafkaClient({ bootstrapServers: [`127.0.0.1:${port}`], clientId: 'kafka-cli-test-reader' });
    try {
      const records = await readToEnd(reader, 'kept');
      assert.deepEqual(
        records.map((r) => r.value?.toString()),
        ['before the stop'],
      );
    } finally {
      await reader.close();
    }

    assert.equal((await run('down')).code, 0);
    assert.equal(existsSync(String(up.value.dataDir)), false, 'a plain down deletes the data it made');
    assert.equal((await run('status')).code, 1);
  });
});
