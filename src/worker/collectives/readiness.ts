/**
 * Whether a collective call may start: every partition's current attempt is up (registered,
 * serving or draining) and this partition's own attempt is the one in the membership. Pure.
 */
import type { Member } from '../../protocol/types.js';

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
