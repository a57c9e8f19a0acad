/**
 * Static group membership (KIP-345, `group.instance.id`) on @platformatic/kafka's Consumer.
 *
 * A static member keeps its place in the group across a restart or a lost connection: when it
 * joins again under the same instance id within `session.timeout.ms`, the coordinator hands it
 * its previous assignment without a rebalance (the other members go on undisturbed). Two things
 * the library does not do for it are done here, by wrapping the protocol APIs it asks for:
 *
 * - The member must not send LeaveGroup when it closes (KIP-345: "the member will not send
 *   LeaveGroupRequest when shutting down"; the broker drops it when its session times out). The
 *   library sends LeaveGroup from close() whatever the membership, and when that fails (the
 *   broker is away) it stays open, so a member replaced during an outage kept retrying it. Its
 *   LeaveGroup is answered here, locally, as accepted: close() stops the heartbeats and closes
 *   the connections without leaving, and cannot fail for want of a broker.
 * - FENCED_INSTANCE_ID (another live member registered the same instance id) is final, as in the
 *   Java client. The library instead drops its member id and joins again — which fences the other
 *   member, which does the same, for ever. After the first FENCED_INSTANCE_ID every group request
 *   of this consumer fails locally with it, and `onFenced` is told.
 */
import { type Consumer, findErrorBy } from '@platformatic/kafka';
import { kGetApi } from './library-internals.ts';

type Api = (...args: unknown[]) => void;
type ApiCallback = (error: Error | null, api?: Api) => void;

/** The group APIs a fenced static member must not send again. */
const GROUP_APIS = new Set(['JoinGroup', 'SyncGroup', 'Heartbeat', 'OffsetCommit', 'LeaveGroup']);

/** Options of {@link applyStaticMembership}. */
export interface StaticMembershipOptions {
  /** Called once, with the broker's error, when another member took this member's instance id. */
  readonly onFenced?: (error: Error) => void;
}

/** Makes `consumer` (constructed with a groupInstanceId) behave as a KIP-345 static member. */
export function applyStaticMembership(consumer: Consumer, options: StaticMembershipOptions = {}): void {
  const target = consumer as unknown as Record<symbol, (name: string, callback: ApiCallback) => void>;
  const original = target[kGetApi] as (name: string, callback: ApiCallback) => void;
  let fenced: Error | undefined;
  target[kGetApi] = function getApi(this: unknown, name: string, callback: ApiCallback): void {
    if (name === 'LeaveGroup') {
      // The library calls api(connection, groupId, members, callback) and treats a callback
      // without error as a completed leave; the response body is not read.
      callback(null, (...args) => {
        const done = args[args.length - 1] as (error: Error | null, response?: unknown) => void;
        queueMicrotask(() => done(null, { errorCode: 0, members: [] }));
      });
      return;
    }
    if (!GROUP_APIS.has(name)) {
      original.call(this, name, callback);
      return;
    }
    if (fenced) {
      callback(fenced);
      return;
    }
    original.call(this, name, (error, api) => {
      if (error || !api) {
        callback(error, api);
        return;
      }
      const wrapped: Api = (...args) => {
        const done = args[args.length - 1] as (error: Error | null, response?: unknown) => void;
        args[args.length - 1] = (e: Error | null, response?: unknown) => {
          if (e && !fenced && findErrorBy(e, 'apiId', 'FENCED_INSTANCE_ID')) {
            fenced = e;
            options.onFenced?.(e);
          }
          done(e, response);
        };
        api(...args);
      };
      callback(null, Object.assign(wrapped, api));
    });
  };
}
