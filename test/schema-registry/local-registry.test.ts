/**
 * The Schema Registry the global setup starts (or SCHEMA_REGISTRY_URL names) answers the
 * Confluent-compatible API the serdes use.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registryOrSkip } from '../setup/schema-registry.ts';

const url = registryOrSkip();

describe('test Schema Registry', { skip: url ? false : 'no Schema Registry (see the global setup message)' }, () => {
  it('answers the Confluent-compatible API: registers an Avro schema and returns it by id', async () => {
    const subject = `setup-check-${process.pid}-${Date.now()}-value`;
    const schema = JSON.stringify({ type: 'record', name: 'SetupCheck', fields: [{ name: 'x', type: 'double' }] });
    const post = await fetch(`${url}/subjects/${subject}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema }),
    });
    assert.equal(post.status, 200, await post.clone().text());
    const { id } = (await post.json()) as { id: number };
    assert.ok(Number.isInteger(id) && id > 0, `id ${id}`);
    const get = await fetch(`${url}/schemas/ids/${id}`);
    assert.equal(get.status, 200);
    const body = (await get.json()) as { schema: string };
    assert.deepEqual(JSON.parse(body.schema), JSON.parse(schema));
  });
});
