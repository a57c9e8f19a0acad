/**
 * Where inflow's .proto files live and how to load them with protobufjs. Every loader in inflow
 * (protobufjs here, @grpc/proto-loader in the gRPC transports) must use {@link PROTO_LOAD_OPTIONS}
 * so that message objects look the same to every codec.
 */
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** Include root of the .proto files: imports are written relative to it (`tensorflow/core/framework/…`). */
export const PROTO_DIR: string = fileURLToPath(new URL('.', import.meta.url));

/**
 * Options every loader uses (they are also valid @grpc/proto-loader options):
 * field names as in the .proto (`keepCase`), int64 as decimal strings, enums as names,
 * bytes as Buffer, repeated fields present as arrays even when empty, no defaults filled in.
 */
export const PROTO_LOAD_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  arrays: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
} as const;

/**
 * Loads .proto files (paths relative to {@link PROTO_DIR}) into a fresh protobufjs Root with
 * `keepCase: true`; imports resolve against {@link PROTO_DIR}. Synchronous: call once at startup.
 */
export function loadProtoRoot(files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(PROTO_DIR, target));
  return root.loadSync([...files], { keepCase: true });
}
