import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { endpointFormatsFromFile } from './endpoint-formats.ts';

describe('the Kafka endpoint formats file', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const file = async (text: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-endpoint-formats-'));
    dirs.push(dir);
    const path = join(dir, 'formats.yaml');
    await writeFile(path, text);
    return path;
  };

  it('gives the endpoint its request, response and prediction log formats and the registry, paths relative to the file', async () => {
    const path = await file(`
schemaRegistry: { url: "http://127.0.0.1:1/apis/ccompat/v7" }
request: { format: avro }
response: { format: avro, schemaFile: response.avsc }
predictionLog: { topic: predictions, value: { format: avro, schemaFile: log.avsc } }
`);
    const o = await endpointFormatsFromFile(path);
    assert.deepEqual(o.formats, {
      request: { format: 'avro' },
      response: { format: 'avro', schemaFile: 'response.avsc' },
      predictionLog: { format: 'avro', schemaFile: 'log.avsc' },
    });
    assert.equal(o.predictionLogTopic, 'predictions');
    assert.equal(o.registry?.baseDir, join(path, '..'));
    assert.equal(o.registry?.client.url, 'http://127.0.0.1:1/apis/ccompat/v7');
  });

  it('refuses a response format without a request format, and unknown keys, naming the field', async () => {
    await assert.rejects(endpointFormatsFromFile(await file('schemaRegistry: { url: "http://r:8081" }\nresponse: { format: avro }\n')), {
      code: 'INVALID_CONFIG',
      message: /response.*needs a request format/,
    });
    await assert.rejects(endpointFormatsFromFile(await file('schemaRegistry: { url: "http://r:8081" }\nrequests: { format: avro }\n')), {
      code: 'INVALID_CONFIG',
      message: /requests/,
    });
  });
});
