import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import type { KeyQueryResult, StoreQuery, WindowQueryResult } from '../streams/runtime/store-query.ts';
import { handleStoreQuery } from './store-query-http.ts';

const body = (text: string | undefined): Record<string, unknown> => JSON.parse(text ?? '{}') as Record<string, unknown>;

/** A query core that answers from a table (the HTTP layer only translates). */
function fake(
  answer: (store: string, key: unknown) => KeyQueryResult,
  windows?: (store: string, key: unknown, from: number, to: number) => WindowQueryResult,
): StoreQuery & { keys: unknown[] } {
  const keys: unknown[] = [];
  return {
    keys,
    storeNames: () => ['counts'],
    async get(store, key) {
      keys.push(key);
      return answer(store, key);
    },
    async fetch(store, key, from, to) {
      keys.push([from, to]);
      if (!windows) throw new InflowError('INVALID_ARGUMENT', `store "${store}" is a key-value store`);
      return windows(store, key, from, to);
    },
  };
}

describe('store query routes', () => {
  it("answers a window store's windows of a key in a time range, redirects to the owner, and refuses bad bounds", async () => {
    let remote = false;
    const q = fake(
      (store, key) => ({ kind: 'absent', store, key, partition: 0 }),
      (store, key, from) =>
        remote
          ? { kind: 'remote', store, key, partition: 3, owner: 'b:8080' }
          : { kind: 'windows', store, key, partition: 1, windows: [{ start: from, value: { n: 2 } }] },
    );
    const r = await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/card7/windows?from=1000&to=2000');
    assert.equal(r?.status, 200);
    assert.deepEqual(body(r?.body), { store: 'counts', key: 'card7', partition: 1, windows: [{ start: 1000, value: { n: 2 } }] });
    await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/card7/windows');
    assert.deepEqual(q.keys.at(-1), [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], 'no bounds: every window');
    remote = true;
    const moved = await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/card7/windows?from=5');
    assert.equal(moved?.status, 307);
    assert.equal(moved?.headers.location, 'http://b:8080/v1/stores/counts/keys/card7/windows?from=5');
    const bad = await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/card7/windows?from=yesterday');
    assert.equal(bad?.status, 400);
    assert.equal(body(bad?.body).error, 'from=yesterday is not a time: expected integer ms since the epoch');
    assert.equal((await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/card7/sessions'))?.status, 404);
  });

  it('lists the stores and answers a value with its partition', async () => {
    const q = fake((store, key) => ({ kind: 'value', store, key, partition: 2, value: { count: 3 } }));
    assert.deepEqual(JSON.parse((await handleStoreQuery(q, 'GET', '/v1/stores'))?.body ?? ''), { stores: ['counts'] });
    const r = await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/card%2F7');
    assert.equal(r?.status, 200);
    assert.deepEqual(JSON.parse(r?.body ?? ''), { store: 'counts', key: 'card/7', partition: 2, value: { count: 3 } });
  });

  it('reads the key as a number or JSON when keyType says so, and refuses one that does not parse', async () => {
    const q = fake((store, key) => ({ kind: 'absent', store, key, partition: 0 }));
    assert.equal((await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/42?keyType=number'))?.status, 404);
    await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/%5B%22a%22%2C1%5D?keyType=json');
    assert.deepEqual(q.keys, [42, ['a', 1]]);
    const bad = await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/abc?keyType=number');
    assert.equal(bad?.status, 400);
    assert.match(String(body(bad?.body).error), /not a number/);
    assert.equal((await handleStoreQuery(q, 'GET', '/v1/stores/counts/keys/a?keyType=date'))?.status, 400);
  });

  it('redirects to the owning instance, and answers 503 with Retry-After when no owner is known', async () => {
    const owned = await handleStoreQuery(
      fake((store, key) => ({ kind: 'remote', store, key, partition: 5, owner: '10.0.0.2:9464' })),
      'GET',
      '/v1/stores/counts/keys/a',
    );
    assert.equal(owned?.status, 307);
    assert.equal(owned?.headers.location, 'http://10.0.0.2:9464/v1/stores/counts/keys/a');
    assert.equal(body(owned?.body).owner, '10.0.0.2:9464');
    const none = await handleStoreQuery(
      fake((store, key) => ({ kind: 'remote', store, key, partition: 5 })),
      'GET',
      '/v1/stores/counts/keys/a',
    );
    assert.equal(none?.status, 503);
    assert.equal(none?.headers['retry-after'], '1');
  });

  it('maps the core’s errors: unknown store 404, restoring 503 with Retry-After', async () => {
    const unknown = await handleStoreQuery(
      fake(() => {
        throw new InflowError('NOT_FOUND', 'no store "x"');
      }),
      'GET',
      '/v1/stores/x/keys/a',
    );
    assert.equal(unknown?.status, 404);
    const restoring = await handleStoreQuery(
      fake(() => {
        throw new InflowError('UNAVAILABLE', 'restoring', { details: { retryAfterS: 2 } });
      }),
      'GET',
      '/v1/stores/counts/keys/a',
    );
    assert.equal(restoring?.status, 503);
    assert.equal(restoring?.headers['retry-after'], '2');
  });

  it('leaves other paths to the caller and refuses writes', async () => {
    const q = fake((store, key) => ({ kind: 'absent', store, key, partition: 0 }));
    assert.equal(await handleStoreQuery(q, 'GET', '/metrics'), undefined);
    assert.equal((await handleStoreQuery(q, 'POST', '/v1/stores/counts/keys/a'))?.status, 405);
    assert.equal((await handleStoreQuery(q, 'GET', '/v1/stores/counts/a'))?.status, 404);
  });
});
