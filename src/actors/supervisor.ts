import { assign, setup } from 'xstate';
import type { Member, PartitionState, Registration, WireError } from '../protocol/types.js';

/**
 * The supervisor actor: the driver's view of a cluster run.
 *
 * It keeps the membership (partition → current attempt, host, port, pid, state), lets a newer
 * attempt of a partition replace the old one (Spark's task retry) while ignoring anything the old
 * attempt still says, publishes the membership on every change, and accepts each partition's result
 * exactly once, from its current attempt.
 *
 * `starting` → `running` (every partition serving) → `stopping` (shutdown broadcast) → `stopped`
 * (every partition's result in); `failed` when the start or stop timeout fires or a partition runs
 * out of attempts while starting.
 *
 * Pure definition: `publishMembers` and `broadcastShutdown` are supplied with `machine.provide()`.
 */

/** Input of the supervisor actor. */
export interface SupervisorInput {
  partitions: number;
  startTimeoutMs: number;
  stopTimeoutMs: number;
}

/** Why the supervisor failed. */
export interface SupervisorFailure {
  code: 'SPS_START_TIMEOUT' | 'SPS_STOP_TIMEOUT' | 'SPS_PARTITION_FAILED';
  /** Partitions that caused the failure. */
  partitions: number[];
  /** Per-partition detail (state reached, last error). */
  detail: string;
  failures?: number;
  lastError?: string;
}

/** Context of the supervisor actor. */
export interface SupervisorContext extends SupervisorInput {
  members: Record<number, Member>;
  results: Record<number, { attempt: number; records: unknown[] }>;
  /** Partitions that ran out of attempts. */
  lost: Record<number, { failures: number; error: string }>;
  /** The last error each partition reported, from any attempt. */
  lastErrors: Record<number, string>;
  /** Bumped on every membership change; lets receivers drop out-of-order views. */
  epoch: number;
  /** Messages from an attempt that is no longer current (ignored). */
  stale: number;
  /** Messages that could not be decoded (ignored). */
  malformed: number;
  failure?: SupervisorFailure;
}

/** Events the supervisor actor accepts. */
export type SupervisorEvent =
  | { type: 'REGISTER'; registration: Registration }
  | { type: 'STATE'; partition: number; attempt: number; state: PartitionState; error?: WireError }
  | { type: 'RESULT'; partition: number; attempt: number; records: unknown[] }
  | { type: 'ATTEMPT_FAILED'; partition: number; attempt: number; error: string }
  | { type: 'GAVE_UP'; partition: number; failures: number; error: string }
  | { type: 'MALFORMED' }
  | { type: 'STOP' };

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Partitions not serving yet. */
export function notServing(ctx: SupervisorContext): number[] {
  return range(ctx.partitions).filter((p) => ctx.members[p]?.state !== 'serving');
}

/** Partitions whose result is not in yet (and that are not lost). */
export function resultsMissing(ctx: SupervisorContext): number[] {
  return range(ctx.partitions).filter((p) => !(p in ctx.results) && !(p in ctx.lost));
}

function describe(ctx: SupervisorContext, partitions: number[]): string {
  return partitions
    .map((p) => {
      const m = ctx.members[p];
      const where = m ? `attempt ${m.attempt} ${m.state}` : 'never registered';
      const err = ctx.lastErrors[p];
      return `partition ${p}: ${where}${err ? `, last error: ${err}` : ''}`;
    })
    .join('; ');
}

/** The current members, ordered by partition. */
export function memberList(ctx: SupervisorContext): Member[] {
  return Object.values(ctx.members).sort((a, b) => a.partition - b.partition);
}

/** The supervisor state machine; provide `publishMembers` and `broadcastShutdown` before starting it. */
export const supervisorMachine = setup({
  types: {
    input: {} as SupervisorInput,
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
  },
  actions: {
    /** Sends the membership view to every partition server. */
    publishMembers: (_args) => {},
    /** Tells every partition server to drain and finish. */
    broadcastShutdown: (_args) => {},
    register: assign(({ context, event }) => {
      if (event.type !== 'REGISTER') return {};
      const r = event.registration;
      const current = context.members[r.partition];
      if (r.partition >= context.partitions || (current && r.attempt < current.attempt)) {
        return { stale: context.stale + 1 };
      }
      const member: Member = { ...r, state: 'registered' };
      return { members: { ...context.members, [r.partition]: member }, epoch: context.epoch + 1 };
    }),
    applyState: assign(({ context, event }) => {
      if (event.type !== 'STATE') return {};
      const current = context.members[event.partition];
      const lastErrors = event.error ? { ...context.lastErrors, [event.partition]: event.error.message } : context.lastErrors;
      // States before registration (initializing, or a failed init) only matter for their error.
      if (!current || event.attempt !== current.attempt) {
        const fresh = !current || event.attempt > current.attempt;
        return fresh ? { lastErrors } : { stale: context.stale + 1 };
      }
      const member: Member = { ...current, state: event.state, error: event.error };
      return { members: { ...context.members, [event.partition]: member }, lastErrors, epoch: context.epoch + 1 };
    }),
    attemptFailed: assign(({ context, event }) => {
      if (event.type !== 'ATTEMPT_FAILED') return {};
      const lastErrors = { ...context.lastErrors, [event.partition]: event.error };
      const current = context.members[event.partition];
      if (!current || current.attempt !== event.attempt || current.state === 'finished') return { lastErrors };
      const member: Member = { ...current, state: 'failed', error: { code: 'SPS_PROCESS_EXIT', message: event.error } };
      return { members: { ...context.members, [event.partition]: member }, lastErrors, epoch: context.epoch + 1 };
    }),
    acceptResult: assign(({ context, event }) => {
      if (event.type !== 'RESULT') return {};
      const current = context.members[event.partition];
      if (event.partition in context.results || (current && current.attempt !== event.attempt)) {
        return { stale: context.stale + 1 };
      }
      return { results: { ...context.results, [event.partition]: { attempt: event.attempt, records: event.records } } };
    }),
    markLost: assign(({ context, event }) => {
      if (event.type !== 'GAVE_UP') return {};
      return { lost: { ...context.lost, [event.partition]: { failures: event.failures, error: event.error } } };
    }),
    countMalformed: assign({ malformed: ({ context }) => context.malformed + 1 }),
    failStart: assign(({ context }) => {
      const missing = notServing(context);
      return { failure: { code: 'SPS_START_TIMEOUT' as const, partitions: missing, detail: describe(context, missing) } };
    }),
    failStop: assign(({ context }) => {
      const missing = resultsMissing(context);
      return { failure: { code: 'SPS_STOP_TIMEOUT' as const, partitions: missing, detail: describe(context, missing) } };
    }),
    failLost: assign(({ context, event }) => {
      if (event.type !== 'GAVE_UP') return {};
      return {
        failure: {
          code: 'SPS_PARTITION_FAILED' as const,
          partitions: [event.partition],
          detail: describe(context, [event.partition]),
          failures: event.failures,
          lastError: event.error,
        },
      };
    }),
  },
  guards: {
    allServing: ({ context }) => notServing(context).length === 0,
    allResultsIn: ({ context }) => resultsMissing(context).length === 0,
  },
  delays: {
    startTimeout: ({ context }) => context.startTimeoutMs,
    stopTimeout: ({ context }) => context.stopTimeoutMs,
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    ...input,
    members: {},
    results: {},
    lost: {},
    lastErrors: {},
    epoch: 0,
    stale: 0,
    malformed: 0,
  }),
  on: {
    REGISTER: { actions: ['register', 'publishMembers'] },
    STATE: { actions: ['applyState', 'publishMembers'] },
    ATTEMPT_FAILED: { actions: ['attemptFailed', 'publishMembers'] },
    RESULT: { actions: 'acceptResult' },
    MALFORMED: { actions: 'countMalformed' },
  },
  initial: 'starting',
  states: {
    starting: {
      always: { guard: 'allServing', target: 'running' },
      after: { startTimeout: { target: 'failed', actions: 'failStart' } },
      on: {
        GAVE_UP: { target: 'failed', actions: ['markLost', 'failLost'] },
        STOP: 'stopping',
      },
    },
    running: {
      on: {
        GAVE_UP: { actions: 'markLost' },
        STOP: 'stopping',
      },
    },
    stopping: {
      entry: 'broadcastShutdown',
      always: { guard: 'allResultsIn', target: 'stopped' },
      after: { stopTimeout: { target: 'failed', actions: 'failStop' } },
      on: {
        // A retry that registers after shutdown was broadcast must hear it too.
        REGISTER: { actions: ['register', 'publishMembers', 'broadcastShutdown'] },
        GAVE_UP: { actions: 'markLost' },
      },
    },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});
