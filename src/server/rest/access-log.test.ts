import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { LocalInference } from '../../serving/local-inference.ts';
import { loadExampleInference, startExampleServer, type ExampleServer } from './fixtures/example-server.ts';

describe('REST access log', () => {
  let inference: LocalInference;
  let server: ExampleServer;
  const lines: Array<Record<string, unknown>> = [];
  before(async () => {
    inference = await loadExampleInference();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    server = await startExampleServer(inference, { logger: pino({ level: 'info' }, sink), accessLogSampleRate: 0 });
  });
  after(async () => {
    await server?.server.close(1000);
    await inference?.close();
  });

  it('logs every failed request with its request id, route, status and time, and no sampled-out success', async () => {
    await (await fetch(`${server.url}/v2/health/live`)).arrayBuffer();
    const res = await fetch(`${server.url}/v1/models/nope:predict`, {
      method: 'POST',
      body: '{"instances": [1]}',
      headers: { 'x-request-id': 'req-42' },
    });
    await res.arrayBuffer();
    const access = lines.filter((l) => l.msg === 'access');
    assert.equal(access.length, 1, 'only the failure was logged at a sample rate of 0');
    assert.equal(access[0]?.requestId, 'req-42');
    assert.equal(access[0]?.status, 404);
    assert.equal(typeof access[0]?.ms, 'number');
  });
});
