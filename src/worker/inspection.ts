import type { InspectionEvent, Snapshot } from 'xstate';
import { encode } from '../protocol/codec.js';
import type { MessageOf } from '../protocol/schema.js';
import type { PartitionState } from '../protocol/types.js';
import type { NatsConnection } from '../transport/bus.js';

/**
 * The worker's side of inspection across processes: its partition server actor runs here, so when
 * the driver asks for inspection, its transitions are reported on the worker's own
 * `ctl.inspect.<partition>` subject (the driver's side: `driver/inspection.ts`).
 */

/** The user's inspector: xstate's inspection callback. */
export type Inspector = (event: InspectionEvent) => void;

type Transition = MessageOf<'transition'>;

/**
 * The worker side: an xstate inspector that publishes every snapshot of the root actor (the
 * partition server; its invoked promise actors are not reported) as a `transition` message.
 */
export function publishTransitions(nc: NatsConnection, subject: string, attempt: number): Inspector {
  let seq = 0;
  return (ie) => {
    if (ie.type !== '@xstate.snapshot' || ie.actorRef.sessionId !== ie.rootId) return;
    const snap = ie.snapshot as Snapshot<unknown> & { value: unknown; context?: { error?: { code: string; message: string } } };
    const [state, step] = typeof snap.value === 'string' ? [snap.value] : (Object.entries(snap.value as Record<string, string>)[0] ?? []);
    const error = state === 'failed' ? snap.context?.error : undefined;
    const t: Transition = { attempt, seq: seq++, state: state as PartitionState, status: snap.status, event: ie.event.type.slice(0, 256) };
    if (typeof step === 'string') t.step = step;
    if (error) t.error = { code: error.code, message: error.message };
    if (!nc.isClosed()) nc.publish(subject, encode('transition', t));
  };
}
