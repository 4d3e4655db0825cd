import type { AnyEventObject } from 'xstate';
import type { Subscription } from '@nats-io/nats-core';
import { decode } from '../protocol/codec.js';
import type { MessageOf } from '../protocol/schema.js';
import { partitionOf, type Subjects } from '../protocol/subjects.js';
import type { NatsConnection } from '../transport/bus.js';
import type { Inspector } from '../worker/inspection.js';

export type { Inspector } from '../worker/inspection.js';

/**
 * Inspection across processes. The driver's actors take the user's inspector directly (xstate's
 * `createActor(machine, { inspect })`); each worker's partition server actor runs in another
 * process, so when the driver asks for inspection, the worker reports its actor's transitions on
 * its own `ctl.inspect.<partition>` subject, and the driver turns them back into inspection events
 * of one stand-in actor per partition attempt, given to the same inspector.
 */

type Transition = MessageOf<'transition'>;

/** The snapshot of a partition server actor seen from the driver: its state, and who it is. */
export interface RemoteSnapshot {
  status: Transition['status'];
  /** The state, as xstate gives it: `'serving'`, or `{ initializing: 'loading' }`. */
  value: string | Record<string, string>;
  context: { partition: number; attempt: number; error?: { code: string; message: string } };
  output: undefined;
  error: undefined;
}

/**
 * The driver side: listens to every partition's `transition` reports and gives them to `inspect`
 * as an `@xstate.actor` event when an attempt is first heard of, then an `@xstate.snapshot` event
 * per transition. The actor ref of an attempt is a stand-in: `id` `partition-<p>`, `sessionId`
 * `sps.<cluster>:p<p>:a<attempt>`, `getSnapshot()` its latest snapshot, and `send` drops events (the
 * actor lives in its worker and takes no events from an inspector). The partition comes from the
 * subject; a message that does not decode, or names no partition, is counted by `onMalformed`;
 * a repeated or older `seq` of an attempt is dropped. The attempt comes from the message body, so
 * only the {@link MAX_INSPECTED_ATTEMPTS} attempts last heard of per partition are kept.
 */
export function receiveTransitions(nc: NatsConnection, subjects: Subjects, partitions: number, inspect: Inspector, onMalformed: () => void): Subscription {
  const attempts = new InspectedAttempts();
  return nc.subscribe(subjects.inspect('*'), {
    callback: (err, msg) => {
      if (err) return;
      const partition = partitionOf(msg.subject, partitions);
      let t: Transition;
      try {
        if (partition === undefined) throw new Error('names no partition');
        const { t: _type, ...m } = decode(msg.subject, msg.data, ['transition']);
        t = m;
      } catch {
        onMalformed();
        return;
      }
      const sessionId = `${subjects.prefix}:p${partition}:a${t.attempt}`;
      let ref = attempts.get(partition, t.attempt);
      if (!ref) {
        const made: AttemptRef = { id: `partition-${partition}`, sessionId, seq: -1, latest: undefined, send: () => {}, getSnapshot: () => made.latest };
        ref = made;
        attempts.add(partition, t.attempt, made);
        inspect({ type: '@xstate.actor', rootId: sessionId, actorRef: made as never });
      }
      if (t.seq <= ref.seq) return;
      ref.seq = t.seq;
      ref.latest = {
        status: t.status,
        value: t.step ? { [t.state]: t.step } : t.state,
        context: { partition, attempt: t.attempt, ...(t.error ? { error: t.error } : {}) },
        output: undefined,
        error: undefined,
      };
      const event: AnyEventObject = { type: t.event };
      inspect({ type: '@xstate.snapshot', rootId: sessionId, actorRef: ref as never, event, snapshot: ref.latest as never });
    },
  });
}

/** The stand-in actor ref of one remote partition attempt. */
export interface AttemptRef {
  id: string;
  sessionId: string;
  seq: number;
  latest: RemoteSnapshot | undefined;
  send(): void;
  getSnapshot(): RemoteSnapshot | undefined;
}

/**
 * Attempts kept per partition. A partition runs one attempt at a time and a replaced one reports
 * briefly, so a few cover every real case; more are forged (the attempt is the body's word).
 */
export const MAX_INSPECTED_ATTEMPTS = 4;

/**
 * The stand-in refs of the attempts last heard of, per partition: at most
 * {@link MAX_INSPECTED_ATTEMPTS} each, the one heard of least recently dropped first, so a flood of
 * made-up attempts costs bounded memory and the real attempt comes back with its next report.
 */
export class InspectedAttempts {
  private readonly byPartition = new Map<number, Map<number, AttemptRef>>();

  /** The ref of `attempt` of `partition`, marked as the one heard of last. */
  get(partition: number, attempt: number): AttemptRef | undefined {
    const refs = this.byPartition.get(partition);
    const ref = refs?.get(attempt);
    if (ref) {
      // Maps keep insertion order: re-inserting makes it the newest.
      refs!.delete(attempt);
      refs!.set(attempt, ref);
    }
    return ref;
  }

  /** Adds the ref of a new attempt, dropping the one of the partition heard of least recently when full. */
  add(partition: number, attempt: number, ref: AttemptRef): void {
    let refs = this.byPartition.get(partition);
    if (!refs) this.byPartition.set(partition, (refs = new Map()));
    if (refs.size >= MAX_INSPECTED_ATTEMPTS) refs.delete(refs.keys().next().value!);
    refs.set(attempt, ref);
  }

  /** Refs kept, over all partitions. */
  get size(): number {
    let n = 0;
    for (const refs of this.byPartition.values()) n += refs.size;
    return n;
  }
}
