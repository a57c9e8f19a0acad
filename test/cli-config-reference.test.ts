/** docs/config-reference.md is generated from the schemas: this fails when the committed file is stale. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { keyComments, renderConfigReference } from '../src/cli/config-reference.ts';

describe('configuration reference', () => {
  it('docs/config-reference.md matches what the schemas render (run node scripts/gen-config-docs.ts)', async () => {
    const committed = await readFile(join(import.meta.dirname, '..', 'docs', 'config-reference.md'), 'utf8');
    const rendered = await renderConfigReference();
    assert.equal(committed, rendered, 'docs/config-reference.md is stale: run node scripts/gen-config-docs.ts and commit the result');
  });

  it('documents every key of the three files with its type, default and rules', async () => {
    const text = await renderConfigReference();
    assert.match(text, /^\| `batching\.maxDelayMicros` \| integer \| {2}\| `0` \| ≥ 0, ≤ 10000000 \| How long the first queued row waits/m);
    assert.match(text, /^\| `pipeline\[\]\.predict\.inputs\.<name>\.dtype` \| `"BOOL"` \\\| `"UINT8"`/m);
    assert.match(text, /^\| `pipeline\[\]\.split\.branches\[\]\.when\.exists` \| boolean \|/m);
    assert.match(text, /^\| `sasl\.mechanism` \| `"PLAIN"` \\\| `"SCRAM-SHA-256"` \\\| `"SCRAM-SHA-512"` \\\| `"OAUTHBEARER"` \| yes \|/m);
  });

  it("takes a key's description from the doc comment right above it, and keeps different ones apart", () => {
    const comments = keyComments([
      '/** First. */\n  timeoutMs: z.number(),\n/** Not a key doc. */\nconst x = 1;\n  /**\n   * Second,\n   * two lines.\n   */\n  timeoutMs: z.number(),\n  get pipeline() {',
    ]);
    assert.deepEqual(comments.get('timeoutMs'), ['First.', 'Second, two lines.']);
    assert.equal(comments.has('pipeline'), false);
  });
});
