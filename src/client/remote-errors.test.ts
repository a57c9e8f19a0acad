import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCodes, GrpcStatus } from '../errors.ts';
import {
  codeOfGrpcStatus,
  codeOfHttpStatus,
  grpcStatusError,
  httpStatusError,
  networkError,
  type RemoteEndpoint,
  serverMessageOf,
} from './remote-errors.ts';

const endpoint: RemoteEndpoint = { protocol: 'oip-rest', url: 'http://127.0.0.1:8501' };
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('HTTP status → error code', () => {
  const table: [number, string, boolean][] = [
    [400, 'INVALID_ARGUMENT', false],
    [401, 'UNAUTHENTICATED', false],
    [403, 'PERMISSION_DENIED', false],
    [404, 'NOT_FOUND', false],
    [408, 'DEADLINE_EXCEEDED', true],
    [409, 'ALREADY_EXISTS', false],
    [413, 'PAYLOAD_TOO_LARGE', false],
    [422, 'INVALID_ARGUMENT', false],
    [429, 'RESOURCE_EXHAUSTED', true],
    [499, 'CANCELLED', false],
    [500, 'INTERNAL', false],
    [501, 'UNIMPLEMENTED', false],
    [502, 'UNAVAILABLE', true],
    [503, 'UNAVAILABLE', true],
    [504, 'DEADLINE_EXCEEDED', true],
    [507, 'INTERNAL', false],
  ];
  for (const [status, code, retriable] of table) {
    it(`maps ${status} to ${code}, which is ${retriable ? '' : 'not '}retried`, () => {
      const mapped = codeOfHttpStatus(status);
      assert.equal(mapped, code);
      assert.equal(errorCodes[mapped].retriable, retriable);
    });
  }

  it('keeps the server message from a {"error"} body, with the endpoint and the status', () => {
    const error = httpStatusError(endpoint, 404, utf8('{"error":"Could not find any versions of model x"}'));
    assert.equal(error.code, 'NOT_FOUND');
    assert.equal(error.message, 'remote oip-rest http://127.0.0.1:8501: Could not find any versions of model x (HTTP 404)');
    assert.deepEqual(error.details, { protocol: 'oip-rest', url: 'http://127.0.0.1:8501', httpStatus: 404 });
  });

  it('keeps a non-JSON body as text, cut to 1000 characters, and names an empty one', () => {
    assert.equal(serverMessageOf(utf8('  upstream connect error  ')), 'upstream connect error');
    assert.equal(serverMessageOf(new Uint8Array(0)), '(empty body)');
    const long = serverMessageOf(utf8('x'.repeat(5000)));
    assert.match(long, /^x{1000}… \(5000 characters\)$/);
  });
});

describe('gRPC status → error code', () => {
  const table: [keyof typeof GrpcStatus, string][] = [
    ['CANCELLED', 'CANCELLED'],
    ['UNKNOWN', 'INTERNAL'],
    ['INVALID_ARGUMENT', 'INVALID_ARGUMENT'],
    ['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED'],
    ['NOT_FOUND', 'NOT_FOUND'],
    ['ALREADY_EXISTS', 'ALREADY_EXISTS'],
    ['PERMISSION_DENIED', 'PERMISSION_DENIED'],
    ['RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED'],
    ['FAILED_PRECONDITION', 'FAILED_PRECONDITION'],
    ['ABORTED', 'UNAVAILABLE'],
    ['OUT_OF_RANGE', 'INVALID_ARGUMENT'],
    ['UNIMPLEMENTED', 'UNIMPLEMENTED'],
    ['INTERNAL', 'INTERNAL'],
    ['UNAVAILABLE', 'UNAVAILABLE'],
    ['DATA_LOSS', 'INTERNAL'],
    ['UNAUTHENTICATED', 'UNAUTHENTICATED'],
  ];
  for (const [status, code] of table) {
    it(`maps ${status} to ${code}`, () => assert.equal(codeOfGrpcStatus(GrpcStatus[status]), code));
  }

  it('treats a RESOURCE_EXHAUSTED about message size as PAYLOAD_TOO_LARGE, which is not retried', () => {
    const code = codeOfGrpcStatus(GrpcStatus.RESOURCE_EXHAUSTED, 'Received message larger than max (5000000 vs. 4194304)');
    assert.equal(code, 'PAYLOAD_TOO_LARGE');
    assert.equal(errorCodes[code].retriable, false);
    assert.equal(codeOfGrpcStatus(GrpcStatus.RESOURCE_EXHAUSTED, 'too many calls in flight'), 'RESOURCE_EXHAUSTED');
  });

  it('keeps the details with the endpoint and the status name', () => {
    const error = grpcStatusError({ protocol: 'oip-grpc', url: '127.0.0.1:8500' }, GrpcStatus.NOT_FOUND, 'model nope');
    assert.equal(error.code, 'NOT_FOUND');
    assert.equal(error.message, 'remote oip-grpc 127.0.0.1:8500: model nope (gRPC NOT_FOUND)');
  });
});

describe('socket errors', () => {
  for (const errno of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND']) {
    it(`makes ${errno} UNAVAILABLE, which is retried`, () => {
      const cause = Object.assign(new Error(`connect ${errno} 127.0.0.1:1`), { code: errno });
      const error = networkError(endpoint, cause);
      assert.equal(error.code, 'UNAVAILABLE');
      assert.equal(error.retriable, true);
      assert.match(error.message, new RegExp(`^remote oip-rest http://127.0.0.1:8501: cannot reach the server \\(${errno}: `));
      assert.equal(error.cause, cause);
    });
  }

  it('makes "socket hang up" UNAVAILABLE too', () => {
    assert.equal(networkError(endpoint, new Error('socket hang up')).code, 'UNAVAILABLE');
  });
});
