import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downloadedBytes } from '../kafka/broker/broker-jars.ts';
import { kafkaMain } from './kafka-command.ts';

describe('inflow kafka (without a broker)', () => {
  let home: string;
  let previous: string | undefined;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'inflow-broker-home-'));
    previous = process.env.INFLOW_BROKER_HOME;
    process.env.INFLOW_BROKER_HOME = home;
  });
  after(async () => {
    if (previous === undefined) delete process.env.INFLOW_BROKER_HOME;
    else process.env.INFLOW_BROKER_HOME = previous;
    await rm(home, { recursive: true, force: true });
  });

  const run = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await kafkaMain(
      argv,
      (l) => out.push(l),
      (l) => err.push(l),
    );
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  it('status exits 1 when no broker runs, so scripts can test it', async () => {
    const text = await run('status');
    assert.equal(text.code, 1);
    assert.match(text.out, /Kafka is not running \(start it with: inflow kafka up\)/);
    const json = await run('status', '--json');
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.out), { running: false });
  });

  it('refuses a port that is not one, and flags that belong to another action', async () => {
    for (const port of ['0', '70000', 'abc']) {
      const r = await run('up', '--port', port);
      assert.equal(r.code, 2, port);
      assert.match(r.err, /--port must be a port number 1-65535/);
    }
    assert.match((await run('up', '--keep-data')).err, /--keep-data goes with "down" only/);
    assert.match((await run('status', '--port', '9092')).err, /--port goes with "up" only/);
    assert.match((await run('launch')).err, /unknown action "launch".*up, down, restart or status/);
    assert.equal((await run('--bogus')).code, 2);
  });

  it('has nothing to stop or restart when nothing was started', async () => {
    assert.equal((await run('down', '--keep-data')).code, 0);
    const restart = await run('restart');
    assert.equal(restart.code, 2);
    assert.match(restart.err, /no local Kafka broker to restart; start one with: inflow kafka up/);
  });

  it('documents how to stop and restart the broker with its data', async () => {
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /--keep-data/);
    assert.match(help.out, /--data <dir>/);
    assert.match(help.out, /--port <n>/);
    assert.match(help.out, /restart/);
  });
});

describe('the first broker download', () => {
  it("reads each file Maven downloaded and its size from Maven's transfer lines", () => {
    assert.equal(
      downloadedBytes(
        'Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.1.2/kafka_2.13-4.1.2.jar (6.3 MB at 2.1 MB/s)',
      ),
      6_300_000,
    );
    assert.equal(downloadedBytes('[INFO] Downloaded from central: https://x/y.pom (1.2 kB at 30 kB/s)'), 1200);
    assert.equal(downloadedBytes('Downloading from central: https://x/y.jar'), undefined);
    assert.equal(downloadedBytes('[INFO] BUILD SUCCESS'), undefined);
  });
});
