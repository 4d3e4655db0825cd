import type { Member } from '../protocol/types.js';
import { Changes, waitFor } from '../protocol/wait-for.js';
import { RequestError } from '../errors.js';
import type { ClusterEvents, ClusterState } from './cluster-events.js';
import type { RejoinOptions } from '../protocol/call-options.js';

/** What asking a partition again needs of the cluster: its members, its state and their events. */
export interface MembershipSource {
  readonly members: Member[];
  readonly state: ClusterState;
  on<K extends 'member' | 'state'>(event: K, listener: (...args: ClusterEvents[K]) => void): unknown;
  off<K extends 'member' | 'state'>(event: K, listener: (...args: ClusterEvents[K]) => void): unknown;
}

/** A membership change that ended one call to a partition: its attempt failed or was replaced. */
const REPLACED = Symbol('replaced');

/**
 * Calls partition `p` with `call`, and when its attempt fails or is replaced before it answers,
 * waits (up to `rejoin.timeoutMs` each time) for its new attempt to serve and calls that one.
 * An error from an attempt that still serves is the partition's answer.
 * @throws RequestError `SPS_NOT_SERVING` when no attempt of the partition serves in time; the
 * cluster's failure or stop ends the wait with `SPS_NOT_RUNNING`.
 */
export async function callRejoining<T>(
  cluster: MembershipSource,
  p: number,
  endpoint: string,
  call: (signal: AbortSignal) => Promise<T>,
  rejoin: RejoinOptions,
  signal?: AbortSignal,
): Promise<T> {
  const changes = new Changes();
  const notify = (): void => changes.notify();
  cluster.on('member', notify);
  cluster.on('state', notify);
  try {
    for (let asked = 0; ; asked++) {
      const member = await waitFor(() => servingMember(cluster, p, endpoint), {
        changes,
        signal,
        timeoutMs: rejoin.timeoutMs,
        onTimeout: () => new RequestError('SPS_NOT_SERVING', p, endpoint, `no attempt of the partition served within ${rejoin.timeoutMs} ms`),
      });
      if (asked > 0) rejoin.onRejoin?.(p, member.attempt);
      const done = new AbortController();
      const onAbort = (): void => done.abort(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const replaced = waitFor(() => gone(cluster, p, member.attempt) && REPLACED, { changes, signal: done.signal });
        replaced.catch(() => {});
        const reply = await Promise.race([call(done.signal), replaced]);
        if (reply !== REPLACED) return reply as T;
      } catch (err) {
        signal?.throwIfAborted();
        // An attempt that is being replaced may answer with an error: its successor is asked.
        if (!gone(cluster, p, member.attempt)) throw err;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        done.abort();
      }
    }
  } finally {
    cluster.off('member', notify);
    cluster.off('state', notify);
  }
}

/** Partition `p`'s member once its current attempt serves; throws once the cluster cannot serve it any more. */
function servingMember(cluster: MembershipSource, p: number, endpoint: string): Member | undefined {
  if (cluster.state !== 'running' && cluster.state !== 'starting') {
    throw new RequestError('SPS_NOT_RUNNING', p, endpoint, `the cluster is ${cluster.state}, not running`);
  }
  const m = cluster.members.find((x) => x.partition === p);
  return m?.state === 'serving' ? m : undefined;
}

/** Whether `attempt` of partition `p` is no longer its serving attempt (failed, lost or replaced). */
function gone(cluster: MembershipSource, p: number, attempt: number): boolean {
  const m = cluster.members.find((x) => x.partition === p);
  return !m || m.attempt !== attempt || m.state === 'failed' || cluster.state !== 'running';
}
