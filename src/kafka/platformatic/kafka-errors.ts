/**
 * Maps @platformatic/kafka errors (GenericError trees with Kafka protocol error ids inside)
 * onto inflow's closed code table, with messages that say the cause and the fix.
 */
import { InflowError, type ErrorCode } from '../../errors.ts';

interface ErrorNode {
  code?: unknown;
  apiId?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/** Kafka protocol error ids (the broker's names) → inflow codes. */
const byProtocolId: Record<string, ErrorCode> = {
  UNKNOWN_TOPIC_OR_PARTITION: 'KAFKA_TOPIC_NOT_FOUND',
  UNKNOWN_TOPIC_ID: 'KAFKA_TOPIC_NOT_FOUND',
  MESSAGE_TOO_LARGE: 'KAFKA_RECORD_TOO_LARGE',
  RECORD_LIST_TOO_LARGE: 'KAFKA_RECORD_TOO_LARGE',
  INVALID_PRODUCER_EPOCH: 'KAFKA_FENCED',
  PRODUCER_FENCED: 'KAFKA_FENCED',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'PERMISSION_DENIED',
  TOPIC_AUTHORIZATION_FAILED: 'PERMISSION_DENIED',
  GROUP_AUTHORIZATION_FAILED: 'PERMISSION_DENIED',
  SASL_AUTHENTICATION_FAILED: 'UNAUTHENTICATED',
  REBALANCE_IN_PROGRESS: 'KAFKA_REBALANCE',
  ILLEGAL_GENERATION: 'KAFKA_REBALANCE',
  UNKNOWN_MEMBER_ID: 'KAFKA_REBALANCE',
  FENCED_INSTANCE_ID: 'KAFKA_FENCED',
  TOPIC_ALREADY_EXISTS: 'ALREADY_EXISTS',
  INVALID_TOPIC_EXCEPTION: 'INVALID_ARGUMENT',
  INVALID_PARTITIONS: 'INVALID_ARGUMENT',
  INVALID_REPLICATION_FACTOR: 'INVALID_ARGUMENT',
  INVALID_CONFIG: 'INVALID_ARGUMENT',
  POLICY_VIOLATION: 'INVALID_ARGUMENT',
  REQUEST_TIMED_OUT: 'DEADLINE_EXCEEDED',
};

const hints: Partial<Record<ErrorCode, string>> = {
  KAFKA_TOPIC_NOT_FOUND: 'create the topic first (inflow never auto-creates topics)',
  KAFKA_RECORD_TOO_LARGE: "the broker refused the record: keep records under the topic's max.message.bytes (1 MiB by default) or raise it",
  KAFKA_FENCED: 'another producer with the same transactional id took over; this one must stop',
  KAFKA_REBALANCE: 'the group rebalanced and this member lost the partition; its records will be reprocessed by the new owner',
  KAFKA_UNREACHABLE: 'check bootstrapServers / KAFKA_BOOTSTRAP_SERVERS and that the broker is running and reachable',
};

/** Depth-first walk over an error, its `errors` (AggregateError) and its `cause`. */
function* walk(error: unknown, depth = 0): Generator<ErrorNode> {
  if (depth > 8 || error === null || typeof error !== 'object') return;
  const node = error as ErrorNode;
  yield node;
  if (Array.isArray(node.errors)) for (const child of node.errors) yield* walk(child, depth + 1);
  if (node.cause) yield* walk(node.cause, depth + 1);
}

/**
 * Converts a client error into an InflowError.
 * @param context what inflow was doing ("producing to orders", "committing offsets of group g"), put first in the message.
 */
export function toInflowError(error: unknown, context: string): InflowError {
  if (error instanceof InflowError) return error;
  let code: ErrorCode | undefined;
  let detail: string | undefined;
  for (const node of walk(error)) {
    if (typeof node.apiId === 'string' && byProtocolId[node.apiId]) {
      code = byProtocolId[node.apiId];
      detail = `${node.apiId}: ${String(node.message)}`;
      break;
    }
    // The library reports a topic missing from metadata as a user error, not a protocol one.
    if (node.code === 'PLT_KFK_USER' && /^Unknown topic/.test(String(node.message))) {
      code = 'KAFKA_TOPIC_NOT_FOUND';
      detail = String(node.message);
      break;
    }
    if (node.code === 'PLT_KFK_NETWORK' && code === undefined) {
      code = 'KAFKA_UNREACHABLE';
      detail = String(node.message);
    }
    if (node.code === 'PLT_KFK_AUTHENTICATION') {
      code = 'UNAUTHENTICATED';
      detail = String(node.message);
      break;
    }
    if (node.code === 'PLT_KFK_TIMEOUT' && code === undefined) {
      code = 'DEADLINE_EXCEEDED';
      detail = String(node.message);
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  const finalCode = code ?? 'KAFKA_ERROR';
  const hint = detail?.startsWith('FENCED_INSTANCE_ID')
    ? 'another live member of the group uses the same group instance id (static membership); give each instance its own id'
    : hints[finalCode];
  return new InflowError(finalCode, `${context}: ${detail ?? message}${hint ? ` (${hint})` : ''}`, { cause: error });
}

/** Runs `fn`, converting any client error with {@link toInflowError}. */
export async function mapErrors<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toInflowError(error, context);
  }
}
