/**
 * Whether a collective call may start: every partition's current attempt is up (registered,
 * serving or draining) and this partition's own attempt is the one in the membership; and waiting
 * until it may, on the clock it is given.
 */
import { CollectiveAbortedError, CollectiveTimeoutError } from '../../errors.js';
import type { Member } from '../../protocol/types.js';
import { waitFor, type Changes, type Clock } from '../../protocol/wait-for.js';

const READY_STATES = new Set(['registered', 'serving', 'draining']);

/** Whether every one of `partitions` is up in `members`, and `partition`'s member is attempt `attempt`. */
export function allReady(members: readonly Member[], partitions: number, partition: number, attempt: number): boolean {
  if (members.length < partitions) return false;
  return members.every((m) => READY_STATES.has(m.state)) && members.find((m) => m.partition === partition)?.attempt === attempt;
}

/** The partitions of `0 … partitions−1` that are not up in `members`. */
export function notReady(members: readonly Member[], partitions: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) {
    const m = members.find((x) => x.partition === p);
    if (!m || !READY_STATES.has(m.state)) out.push(p);
  }
  return out;
}

/** What waiting for readiness reads: the view as it changes, and who this partition is. */
export interface ReadinessView {
  members: () => readonly Member[];
  generation: () => number;
  /** Notified whenever a view was taken. */
  changes: Changes;
  partitions: number;
  partition: number;
  attempt: number;
  clock: Clock;
}

/**
 * Resolves once every partition is up ({@link allReady}). Rejects with `CollectiveTimeoutError`
 * at `deadline` naming who is not serving, with the signal's reason, or with
 * `CollectiveAbortedError` when a view that comes while waiting shows another attempt of this
 * partition (it was replaced: no view will make it ready).
 */
export async function waitReady(v: ReadinessView, op: string, timeoutMs: number, deadline: number, signal?: AbortSignal): Promise<void> {
  let waiting = false;
  const ready = (): boolean => {
    const members = v.members();
    const self = members.find((m) => m.partition === v.partition);
    if (waiting && self && self.attempt !== v.attempt) {
      throw new CollectiveAbortedError(op, [v.partition], v.generation(), `attempt ${v.attempt} of partition ${v.partition} was replaced`);
    }
    if (allReady(members, v.partitions, v.partition, v.attempt)) return true;
    waiting = true;
    return false;
  };
  await waitFor(ready, {
    changes: v.changes,
    timeoutMs: Math.max(0, deadline - v.clock.now()),
    signal,
    clock: v.clock,
    onTimeout: () => {
      const missing = notReady(v.members(), v.partitions);
      return new CollectiveTimeoutError(op, timeoutMs, missing, `partition(s) ${missing.join(', ')} not serving in generation ${v.generation()}`);
    },
  });
}
