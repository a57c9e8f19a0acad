/**
 * Bearer-token authentication for every gRPC method (reflection included), as a grpc-js server
 * interceptor: the call is refused with UNAUTHENTICATED before its message is even read. The
 * health service stays open, because Kubernetes gRPC probes cannot send a token.
 */
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';

/** Path prefix of methods that need no token. */
const OPEN_PREFIX = '/grpc.health.v1.Health/';

function tokenMatches(given: string, tokens: readonly Buffer[]): boolean {
  const candidate = Buffer.from(given);
  let ok = false;
  // Compare against every token (constant time per token) so timing does not reveal which failed.
  for (const token of tokens) if (token.length === candidate.length && timingSafeEqual(token, candidate)) ok = true;
  return ok;
}

/** Why a call's metadata does not authenticate it, or undefined when it does. */
export function checkBearer(metadata: grpc.Metadata, tokens: readonly Buffer[]): string | undefined {
  const values = metadata.get('authorization');
  if (values.length === 0) return 'missing "authorization" metadata; expected "Bearer <token>"';
  const value = values[0];
  if (typeof value !== 'string' || !/^bearer /i.test(value)) return 'the "authorization" metadata must be "Bearer <token>"';
  if (!tokenMatches(value.slice(7).trim(), tokens)) return 'invalid bearer token';
  return undefined;
}

/**
 * A server interceptor that lets a call through only with `authorization: Bearer <token>`, where
 * `tokensFor(path)` gives the tokens a method accepts (undefined: open, no token needed).
 */
export function createBearerAuthInterceptor(tokensFor: (path: string) => readonly string[] | undefined): grpc.ServerInterceptor {
  const buffers = new Map<readonly string[], Buffer[]>();
  return (methodDescriptor, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        const tokens = methodDescriptor.path.startsWith(OPEN_PREFIX) ? undefined : tokensFor(methodDescriptor.path);
        if (tokens === undefined) {
          next();
          return;
        }
        let expected = buffers.get(tokens);
        if (!expected) {
          expected = tokens.map((t) => Buffer.from(t));
          buffers.set(tokens, expected);
        }
        const accepted = expected;
        next({
          onReceiveMetadata(metadata, mdNext) {
            const problem = checkBearer(metadata, accepted);
            if (problem === undefined) mdNext(metadata);
            else call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: problem });
          },
        });
      },
    });
}
