import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { topicsMain } from './topics-command.ts';

describe('inflow topics create --endpoint', () => {
  it("plans the endpoint's prediction log topic that its --endpoint-formats file names", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-topics-'));
    try {
      const formats = join(dir, 'formats.yaml');
      await writeFile(
        formats,
        'schemaRegistry: { url: "http://127.0.0.1:1" }\npredictionLog: { topic: endpoint-predictions, value: { format: avro } }\n',
      );
      const out: string[] = [];
      const code = await topicsMain(['create', '--endpoint', '--endpoint-formats', formats, '--dry-run', '--json'], (l) => out.push(l));
      assert.equal(code, 0);
      const report = JSON.parse(out.join('\n')) as { topics: { topic: string; role: string }[] };
      assert.deepEqual(
        report.topics.map((t) => [t.topic, t.role]),
        [
          ['inflow-requests', 'Kafka-native endpoint: requests'],
          ['inflow-responses', 'Kafka-native endpoint: responses'],
          ['inflow-errors', 'Kafka-native endpoint: errors'],
          ['endpoint-predictions', 'Kafka-native endpoint: prediction log'],
        ],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
