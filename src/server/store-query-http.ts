/**
 * Interactive queries over HTTP: the same routes on `inflow stream --metrics-port` and wherever
 * a server hosts a pipeline's {@link StoreQuery}. Transport only: the answers come from the
 * query core (src/streams/runtime/store-query.ts).
 *
 *   GET /v1/stores                          → 200 {"stores": ["counts", …]}
 *   GET /v1/stores/{store}/keys/{key}       → 200 {"store","key","partition","value"}
 *       ?keyType=string (default) | number | json   how {key} is read ("json": arrays, booleans, null)
 *   GET /v1/stores/{store}/keys/{key}/windows?from={ms}&to={ms}
 *                                           → 200 {"store","key","partition","windows":[{"start","end"?,"value"}]}
 *       a window store's windows of {key} starting in [from, to] (ms since the epoch, inclusive;
 *       default: all), committed state only (Kafka Streams' `WindowStore.fetch(key, from, to)`)
 *
 * Other answers: 404 for an unknown store or a key with no value (the body says which); 400 for a
 * key that does not parse or does not fit the store; 503 with `Retry-After` while the key's
 * partition restores here or the group is between assignments; 307 to the owning instance (body
 * `{"owner": "host:port", "partition"}`, `Location` set) when another instance owns the key.
 */
import { InflowError } from '../errors.ts';
import { RESTORING_RETRY_AFTER_S, type StoreQuery } from '../streams/runtime/store-query.ts';

/** An HTTP answer, for whichever server writes it. */
export interface StoreQueryResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The path prefix of the routes. */
export const STORE_QUERY_PREFIX = '/v1/stores';

const json = (status: number, body: unknown, headers: Record<string, string> = {}): StoreQueryResponse => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: `${JSON.stringify(body)}\n`,
});

function errorResponse(error: unknown): StoreQueryResponse {
  const e = InflowError.from(error);
  const retryAfter = e.details?.retryAfterS;
  return json(
    e.httpStatus,
    { error: e.message, code: e.code, ...(e.details ?? {}) },
    e.code === 'UNAVAILABLE' ? { 'retry-after': String(typeof retryAfter === 'number' ? retryAfter : RESTORING_RETRY_AFTER_S) } : {},
  );
}

/** Reads the key from its path segment as `keyType` says. */
function parseKey(raw: string, keyType: string): unknown {
  switch (keyType) {
    case 'string':
      return raw;
    case 'number': {
      const n = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(n)) throw new InflowError('INVALID_ARGUMENT', `key "${raw}" is not a number (keyType=number)`);
      return n;
    }
    case 'json':
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        throw new InflowError('INVALID_ARGUMENT', `key "${raw}" is not JSON (keyType=json)`);
      }
    default:
      throw new InflowError('INVALID_ARGUMENT', `keyType must be string, number or json, got "${keyType}"`);
  }
}

/** A window bound from the query string: integer ms; absent → the earliest or latest time. */
function bound(params: URLSearchParams, name: 'from' | 'to'): number {
  const raw = params.get(name);
  if (raw === null || raw === '') return name === 'from' ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) {
    throw new InflowError('INVALID_ARGUMENT', `${name}=${raw} is not a time: expected integer ms since the epoch`);
  }
  return n;
}

/**
 * The answer to `GET url` when `url` is under {@link STORE_QUERY_PREFIX}; undefined for any other
 * path (the caller's own routes answer those).
 */
export async function handleStoreQuery(query: StoreQuery, method: string, url: string): Promise<StoreQueryResponse | undefined> {
  const parsed = new URL(url, 'http://localhost');
  const path = parsed.pathname;
  if (path !== STORE_QUERY_PREFIX && !path.startsWith(`${STORE_QUERY_PREFIX}/`)) return undefined;
  if (method !== 'GET' && method !== 'HEAD')
    return json(405, { error: `${method} is not allowed here: stores are read with GET` }, { allow: 'GET, HEAD' });
  const parts = path
    .slice(STORE_QUERY_PREFIX.length)
    .split('/')
    .filter((p) => p !== '');
  try {
    if (parts.length === 0) return json(200, { stores: query.storeNames() });
    const windowed = parts.length === 4 && parts[3] === 'windows';
    if ((parts.length !== 3 && !windowed) || parts[1] !== 'keys') {
      throw new InflowError(
        'NOT_FOUND',
        `no route ${path}: expected ${STORE_QUERY_PREFIX}/{store}/keys/{key} or ${STORE_QUERY_PREFIX}/{store}/keys/{key}/windows`,
      );
    }
    const store = decodeURIComponent(parts[0] as string);
    const key = parseKey(decodeURIComponent(parts[2] as string), parsed.searchParams.get('keyType') ?? 'string');
    const result = windowed
      ? await query.fetch(store, key, bound(parsed.searchParams, 'from'), bound(parsed.searchParams, 'to'))
      : await query.get(store, key);
    switch (result.kind) {
      case 'windows':
        return json(200, { store, key, partition: result.partition, windows: result.windows });
      case 'value':
        return json(200, { store, key, partition: result.partition, value: result.value });
      case 'absent':
        return json(404, {
          error: `store "${store}" has no value for key ${JSON.stringify(key)}`,
          code: 'NOT_FOUND',
          store,
          key,
          partition: result.partition,
        });
      case 'remote':
        if (result.owner === undefined) {
          throw new InflowError(
            'UNAVAILABLE',
            `partition ${result.partition} of store "${store}" has no owner right now (the group is rebalancing); retry shortly`,
            {
              details: { store, partition: result.partition, retryAfterS: RESTORING_RETRY_AFTER_S },
            },
          );
        }
        return json(
          307,
          {
            error: `key ${JSON.stringify(key)} of store "${store}" is in partition ${result.partition}, owned by ${result.owner}`,
            owner: result.owner,
            store,
            key,
            partition: result.partition,
          },
          { location: `http://${result.owner}${path}${parsed.search}` },
        );
    }
  } catch (error) {
    return errorResponse(error);
  }
}
