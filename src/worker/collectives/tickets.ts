/**
 * Who may open a partition's direct socket: a peer asks over NATS (whose subject proves who asks)
 * and gets a one-time ticket only if it is a member's current attempt, in this generation or a
 * later one, and the socket is ready to speak as the bus does. Pure decisions; granting is injected.
 */
import { CollectiveError } from '../../errors.js';
import { decode, encode } from '../../protocol/codec.js';
import type { Member } from '../../protocol/types.js';
import { systemClock, waitFor, type Changes, type Clock } from '../../protocol/wait-for.js';
import { TICKET_WAIT_MS } from './direct.js';

/** What a partition knows when a peer asks it for a ticket. */
export interface TicketState {
  partition: number;
  generation: number;
  members: readonly Member[];
  /** Port of its direct socket, once open. */
  peerPort: number | undefined;
  /** The bus speaks TLS. */
  busEncrypted: boolean;
  /** Fingerprint of its direct socket's certificate, once it speaks TLS. */
  directCert: string | undefined;
}

/** The answer to a ticket request: a ticket, or why there is none. */
export interface TicketAnswer {
  ticket?: string;
  reason?: string;
}

/** A ticket for `from`'s attempt `a` in generation `g` (made by `grant`), if that is who and when this partition is. */
export function ticketFor(state: TicketState, from: number, g: number, a: number, grant: () => string): TicketAnswer {
  if (state.peerPort === undefined) return { reason: `partition ${state.partition} has no direct socket` };
  // On a TLS bus no ticket before the socket speaks TLS: none could open it in the clear.
  if (state.busEncrypted && state.directCert === undefined) return { reason: `partition ${state.partition} has not secured its direct socket yet` };
  if (g < state.generation) return { reason: `partition ${state.partition} is in generation ${state.generation}, not ${g}` };
  // A peer may hear of a new generation first: its attempt is then checked on every frame, against the new membership.
  if (g === state.generation && state.members.find((x) => x.partition === from)?.attempt !== a) {
    return { reason: `attempt ${a} of partition ${from} is not a member` };
  }
  return { ticket: grant() };
}

/** How long a peer may take to answer a ticket request. */
const TICKET_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Asks `peer` for a one-time ticket to its direct socket, for attempt `attempt` in generation
 * `generation`. `ask` sends the request on the subject that proves who asks and resolves with the
 * reply; a refusal rejects with `SPS_COLLECTIVE_DIRECT` naming the peer and its reason (`op` is the
 * call that wanted the socket).
 */
export async function requestTicket(
  ask: (data: Uint8Array, timeoutMs: number) => Promise<{ subject: string; data: Uint8Array }>,
  peer: number,
  generation: number,
  attempt: number,
  op: string,
): Promise<string> {
  const msg = await ask(encode('coll-ticket-get', { g: generation, a: attempt }), TICKET_REQUEST_TIMEOUT_MS);
  const r = decode(msg.subject, msg.data, ['coll-ticket']);
  if (!r.ticket) throw new CollectiveError('SPS_COLLECTIVE_DIRECT', op, `partition ${peer} refused a direct socket: ${r.reason ?? 'no reason given'}`);
  return r.ticket;
}

/**
 * The certificate fingerprint attempt `attempt` of partition `from` announced in `members()`;
 * `undefined` if it is not a member or announced none. A peer may hear of its own new attempt
 * before this partition does: a view without it is waited for (on `viewChanges`), as long as a
 * ticket may wait.
 */
export function certOf(
  members: () => readonly Member[],
  viewChanges: Changes,
  from: number,
  attempt: number,
  waitMs = TICKET_WAIT_MS,
  clock: Clock = systemClock,
): Promise<string | undefined> {
  const known = (): Member | undefined => members().find((m) => m.partition === from);
  const behind = (m: Member | undefined): boolean => !m || m.attempt < attempt;
  const answer = (m: Member | undefined): string | undefined => (m?.attempt === attempt ? m.peerCert : undefined);
  return waitFor(() => !behind(known()) && { cert: answer(known()) }, {
    changes: viewChanges,
    timeoutMs: waitMs,
    onTimeout: () => ({ value: { cert: undefined } }),
    unref: true,
    clock,
  }).then((r) => r.cert);
}
