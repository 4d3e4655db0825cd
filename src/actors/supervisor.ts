import { and, assign, setup } from 'xstate';
import type { FailureReport, Member, PartitionState, Registration } from '../protocol/types.js';

/**
 * The supervisor actor: the driver's view of a cluster run.
 *
 * It keeps the membership (partition → current attempt, host, port, pid, state), lets a newer
 * attempt of a partition replace the old one (Spark's task retry) while ignoring anything the old
 * attempt still says, publishes the membership on every change, and accepts each partition's result
 * exactly once, from its current attempt.
 *
 * `starting` (`launching`, then `launched`: the register and start timeouts run) → `running` (every partition serving) → `stopping` (shutdown broadcast) → `stopped`
 * (every partition's result in). Every fault has one outcome:
 * - a partition out of attempts while starting, the start or stop timeout, or a component lost
 *   (`FAULT`: the bus, nats-server, Spark) → `failed`, with the cause in `context.failure`;
 * - a partition out of attempts after start → `degraded` at once (the cause in `failure`); the
 *   others keep serving until STOP, which collects their results and ends in `failed`; every
 *   partition lost later (also while stopping) is added to the same failure;
 * - a lost Spark job (`GAVE_UP` with `all`) takes every member down with it → `failed`;
 * - an attempt's failure that a retry cannot fix (its report says `retryable: false`) loses its
 *   partition at once, as if it had run out of attempts.
 *
 * Pure definition: `publishMembers` and `broadcastShutdown` are supplied with `machine.provide()`.
 */

/** Input of the supervisor actor. */
export interface SupervisorInput {
  /** Number of partitions in the run (option `partitions`). */
  partitions: number;
  /** From `LAUNCHED`: until every partition registered / serves. */
  registerTimeoutMs: number;
  /** From `LAUNCHED`: ms until every partition serves, else `failed` with `SPS_START_TIMEOUT` (stage `serve`). */
  startTimeoutMs: number;
  /** From `STOP`: ms until every partition's result is in, else `failed` with `SPS_STOP_TIMEOUT`. */
  stopTimeoutMs: number;
}

/** Why the supervisor failed. */
export interface SupervisorFailure {
  /** Kind of failure; the cluster throws the matching error (`StartTimeoutError`, `StopTimeoutError`, `PartitionFailedError`, `ComponentLostError`). */
  code: 'SPS_START_TIMEOUT' | 'SPS_STOP_TIMEOUT' | 'SPS_PARTITION_FAILED' | 'SPS_COMPONENT_LOST';
  /** For a lost component: which one (`nats-server`, `bus connection`, `spark-submit`). */
  component?: string;
  /** Partitions that caused the failure. */
  partitions: number[];
  /** Per-partition detail (state reached, last error). */
  detail: string;
  /** For a start timeout: the stage that ran out of time. */
  stage?: 'register' | 'serve';
  /** For a lost partition (`SPS_PARTITION_FAILED`): how many attempts failed. */
  failures?: number;
  /** For a lost partition (`SPS_PARTITION_FAILED`): the error of its last attempt. */
  lastError?: string;
  /** For a lost partition (`SPS_PARTITION_FAILED`): its worker's own report of its last failure, when it sent one. */
  report?: FailureReport;
}

/** Context of the supervisor actor. */
export interface SupervisorContext extends SupervisorInput {
  /** Each registered partition's current attempt, by partition; a partition that never registered has no entry. */
  members: Record<number, Member>;
  /** Results accepted so far, by partition: one per partition, from its current attempt. */
  results: Record<
    number,
    {
      /** The attempt that delivered the result. */
      attempt: number;
      /** The records the partition server returned. */
      records: unknown[];
    }
  >;
  /** Partitions that ran out of attempts. */
  lost: Record<
    number,
    {
      /** Attempts that failed (0 for a partition taken down by a lost Spark job). */
      failures: number;
      /** The last attempt's error, or the Spark job's. */
      error: string;
    }
  >;
  /** The last error each partition reported, from any attempt. */
  lastErrors: Record<number, string>;
  /** The last failure report each partition's worker sent (code, message, stack, retryable), from any attempt. */
  reports: Record<number, FailureReport>;
  /** The attempts of each partition known to have failed. */
  failedAttempts: Record<number, number[]>;
  /** Bumped on every membership change; lets receivers drop out-of-order views. */
  epoch: number;
  /**
   * Bumped only when a member's attempt fails or is replaced: collectives between partitions run
   * within one generation, and every call of an older one aborts.
   */
  generation: number;
  /** Messages from an attempt that is no longer current (ignored). */
  stale: number;
  /** Messages that could not be decoded (ignored). */
  malformed: number;
  /** Registrations refused for an attempt no launcher started (no valid proof, or its proof used before). */
  forged: number;
  /** Why the supervisor failed or is degraded; absent while nothing failed. */
  failure?: SupervisorFailure;
}

/** The states of an attempt in the order it passes them; `failed` may follow any. */
const LIFECYCLE: readonly PartitionState[] = ['initializing', 'registered', 'serving', 'draining', 'finished'];

/** Events the supervisor actor accepts. */
export type SupervisorEvent =
  | {
      /** A partition's attempt registered. */
      type: 'REGISTER';
      /** What it sent; an attempt older than the current member's is counted stale. */
      registration: Registration;
    }
  | {
      /** A partition reported a state change. */
      type: 'STATE';
      /** The reporting partition. */
      partition: number;
      /** The reporting attempt; only the current member's changes it. */
      attempt: number;
      /** The state the attempt entered. */
      state: PartitionState;
      /** Why, when `state` is `failed`: the worker's report. */
      error?: FailureReport;
    }
  | {
      /** The launcher received a partition's result. */
      type: 'RESULT';
      /** The partition the result is from. */
      partition: number;
      /** The attempt that produced it; accepted only from the current member, once. */
      attempt: number;
      /** The records the partition server returned. */
      records: unknown[];
    }
  | {
      /** The launcher saw a worker process die or hang. */
      type: 'ATTEMPT_FAILED';
      /** The partition of the failed worker. */
      partition: number;
      /** The attempt that failed. */
      attempt: number;
      /** Why, as text (exit code, signal or last output line). */
      error: string;
      /** The worker's own report, when it wrote one before exiting. */
      report?: FailureReport;
    }
  | {
      /** The launcher gave up on a partition: it is lost. */
      type: 'GAVE_UP';
      /** The lost partition. */
      partition: number;
      /** Attempts that failed. */
      failures: number;
      /** The last attempt's error. */
      error: string;
      /** `true` when the whole Spark job failed, taking every partition still owing a result. */
      all?: boolean;
    }
  | {
      /** A component the run needs went away: the supervisor fails. */
      type: 'FAULT';
      /** Which one: `nats-server`, `bus connection`, `spark-submit`. */
      component: string;
      /** What happened to it. */
      error: string;
    }
  | {
      /** A control message did not decode (counted in `malformed`). */
      type: 'MALFORMED';
    }
  | {
      /** A registration without a valid, unused proof was refused (counted in `forged`; nothing else changes). */
      type: 'FORGED';
    }
  /** The launcher has launched every partition (after the Spark application and the submit): the start timeouts run from here. */
  | {
      /** Every partition is launched: the register and start timeouts start. */
      type: 'LAUNCHED';
    }
  | {
      /** `stop()` was called: broadcast the shutdown and collect the results. */
      type: 'STOP';
    };

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Partitions not serving yet. */
export function notServing(ctx: SupervisorContext): number[] {
  return range(ctx.partitions).filter((p) => ctx.members[p]?.state !== 'serving');
}

/** Partitions whose current attempt has not registered (never, or its last attempt failed). */
export function notRegistered(ctx: SupervisorContext): number[] {
  return range(ctx.partitions).filter((p) => !ctx.members[p] || ctx.members[p].state === 'failed');
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

/** Marks every member that owes a result as failed with `why` (a fault took it down). */
function takeDown(ctx: SupervisorContext, why: string, code: string): Pick<SupervisorContext, 'members' | 'epoch' | 'generation'> {
  const members = { ...ctx.members };
  for (const p of resultsMissing(ctx)) {
    const m = members[p];
    if (m && m.state !== 'finished' && m.state !== 'failed') members[p] = { ...m, state: 'failed', error: { code, message: why } };
  }
  return { members, epoch: ctx.epoch + 1, generation: ctx.generation + 1 };
}

/** `failedAttempts` and `reports` with attempt `attempt` of `partition` failed, with `report` if it sent one. */
function noteFailure(
  ctx: SupervisorContext,
  partition: number,
  attempt: number,
  report: FailureReport | undefined,
): Pick<SupervisorContext, 'failedAttempts' | 'reports'> {
  const seen = ctx.failedAttempts[partition] ?? [];
  return {
    failedAttempts: seen.includes(attempt) ? ctx.failedAttempts : { ...ctx.failedAttempts, [partition]: [...seen, attempt] },
    reports: report ? { ...ctx.reports, [partition]: report } : ctx.reports,
  };
}

/** The current members, ordered by partition. */
export function memberList(ctx: SupervisorContext): Member[] {
  return Object.values(ctx.members).sort((a, b) => a.partition - b.partition);
}

/**
 * Transitions of a failure that no retry can fix (a state or exit report with `retryable: false`):
 * the partition is lost at once, and the run goes to `target` (stays, without one). Otherwise the
 * machine's own STATE and ATTEMPT_FAILED handlers take the event.
 */
function notRetried(target?: 'failed' | 'degraded') {
  return {
    STATE: { guard: 'cannotRetry', target, actions: ['applyState', 'loseAtOnce', 'publishMembers'] },
    ATTEMPT_FAILED: { guard: 'cannotRetry', target, actions: ['attemptFailed', 'loseAtOnce', 'publishMembers'] },
  } as const;
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
      // A lost partition is over: nothing said for it afterwards (a late message, a stray retry) counts;
      // nor does an attempt registering twice (it would set a serving member back to registered).
      if (r.partition >= context.partitions || r.partition in context.lost || (current && r.attempt <= current.attempt)) {
        return { stale: context.stale + 1 };
      }
      const member: Member = { ...r, state: 'registered' };
      // A newer attempt replacing a member starts a new generation (a first registration does not).
      const generation = current && r.attempt > current.attempt ? context.generation + 1 : context.generation;
      return { members: { ...context.members, [r.partition]: member }, epoch: context.epoch + 1, generation };
    }),
    applyState: assign(({ context, event }) => {
      if (event.type !== 'STATE') return {};
      if (event.partition in context.lost) return { stale: context.stale + 1 };
      const current = context.members[event.partition];
      const lastErrors = event.error ? { ...context.lastErrors, [event.partition]: event.error.message } : context.lastErrors;
      const failed = event.state === 'failed' ? noteFailure(context, event.partition, event.attempt, event.error) : {};
      // States before registration (initializing, or a failed init) only matter for their error.
      if (!current || event.attempt !== current.attempt) {
        const fresh = !current || event.attempt > current.attempt;
        return fresh ? { lastErrors, ...failed } : { stale: context.stale + 1 };
      }
      // Its result came first (it travels its own path): the attempt is finished, and what it said
      // on its way there changes nothing.
      if (current.state === 'finished') return {};
      // An attempt's states only go forward: one said out of order (or after it failed) counts for nothing.
      if (event.state !== 'failed' && (current.state === 'failed' || LIFECYCLE.indexOf(event.state) < LIFECYCLE.indexOf(current.state))) {
        return { stale: context.stale + 1 };
      }
      // The membership carries code and message only; the stack stays with the driver.
      const error = event.error && { code: event.error.code, message: event.error.message };
      const member: Member = { ...current, state: event.state, error };
      const generation = event.state === 'failed' && current.state !== 'failed' ? context.generation + 1 : context.generation;
      return { members: { ...context.members, [event.partition]: member }, lastErrors, ...failed, epoch: context.epoch + 1, generation };
    }),
    attemptFailed: assign(({ context, event }) => {
      if (event.type !== 'ATTEMPT_FAILED') return {};
      if (event.partition in context.lost) return {};
      const lastErrors = { ...context.lastErrors, [event.partition]: event.error };
      const current = context.members[event.partition];
      const failed = noteFailure(context, event.partition, event.attempt, event.report);
      if (!current || current.attempt !== event.attempt || current.state === 'finished') return { lastErrors, ...failed };
      const member: Member = { ...current, state: 'failed', error: { code: 'SPS_PROCESS_EXIT', message: event.error } };
      const generation = current.state === 'failed' ? context.generation : context.generation + 1;
      return { members: { ...context.members, [event.partition]: member }, lastErrors, ...failed, epoch: context.epoch + 1, generation };
    }),
    acceptResult: assign(({ context, event }) => {
      if (event.type !== 'RESULT') return {};
      const current = context.members[event.partition];
      // Only the current attempt of a member that registered may deliver, and only once.
      if (event.partition in context.results || event.partition in context.lost || !current || current.attempt !== event.attempt) {
        return { stale: context.stale + 1 };
      }
      const results = { ...context.results, [event.partition]: { attempt: event.attempt, records: event.records } };
      if (current.state === 'finished' || current.state === 'failed') return { results };
      // A worker sends its result at the end of draining; it may arrive before the states it
      // reported on the bus, and the run may end with it: the member is finished now.
      return { results, members: { ...context.members, [event.partition]: { ...current, state: 'finished' } }, epoch: context.epoch + 1 };
    }),
    markLost: assign(({ context, event }) => {
      if (event.type !== 'GAVE_UP') return {};
      // A partition whose result is in was not lost, even if the job that failed names it.
      const lost = event.partition in context.results ? context.lost : { ...context.lost, [event.partition]: { failures: event.failures, error: event.error } };
      if (!event.all) return { lost };
      // The whole job is gone: every member still owing a result went down with it.
      const down = takeDown(context, `the Spark job failed: ${event.error.split('\n')[0]}`, 'SPS_JOB_FAILED');
      return { lost: { ...lost, ...Object.fromEntries(resultsMissing(context).map((p) => [p, { failures: 0, error: event.error }])) }, ...down };
    }),
    failComponent: assign(({ context, event }) => {
      if (event.type !== 'FAULT') return {};
      const missing = resultsMissing(context);
      return {
        ...takeDown(context, `${event.component} lost: ${event.error}`, 'SPS_COMPONENT_LOST'),
        failure: { code: 'SPS_COMPONENT_LOST' as const, component: event.component, partitions: missing, detail: event.error },
      };
    }),
    countMalformed: assign({ malformed: ({ context }) => context.malformed + 1 }),
    countForged: assign({ forged: ({ context }) => context.forged + 1 }),
    failStart: assign(({ context }) => {
      const missing = notServing(context);
      return { failure: { code: 'SPS_START_TIMEOUT' as const, stage: 'serve' as const, partitions: missing, detail: describe(context, missing) } };
    }),
    failRegister: assign(({ context }) => {
      const missing = notRegistered(context);
      return { failure: { code: 'SPS_START_TIMEOUT' as const, stage: 'register' as const, partitions: missing, detail: describe(context, missing) } };
    }),
    failStop: assign(({ context }) => {
      const missing = resultsMissing(context);
      return { failure: { code: 'SPS_STOP_TIMEOUT' as const, partitions: missing, detail: describe(context, missing) } };
    }),
    failLost: assign(({ context, event }) => {
      if (event.type !== 'GAVE_UP') return {};
      // A partition lost after another joins the failure; the first stays the one it is about.
      const earlier = context.failure?.code === 'SPS_PARTITION_FAILED' ? context.failure : undefined;
      // A failed job that names a partition whose result is in took the ones still owing theirs.
      const lostNow = event.partition in context.results ? resultsMissing(context) : [event.partition];
      const partitions = [...new Set([...(earlier?.partitions ?? []), ...lostNow])];
      const lastErrors = { ...context.lastErrors, [event.partition]: context.lastErrors[event.partition] ?? event.error };
      return {
        failure: {
          code: 'SPS_PARTITION_FAILED' as const,
          partitions,
          detail: describe({ ...context, lastErrors }, partitions),
          failures: earlier?.failures ?? event.failures,
          lastError: earlier?.lastError ?? event.error,
          report: earlier ? earlier.report : context.reports[event.partition],
        },
      };
    }),
    /** A failure no retry can fix: its partition is lost now, with the attempts that failed so far. */
    loseAtOnce: assign(({ context, event }) => {
      if (event.type !== 'STATE' && event.type !== 'ATTEMPT_FAILED') return {};
      const p = event.partition;
      const report = event.type === 'STATE' ? event.error : event.report;
      const error = event.type === 'STATE' ? `[${report!.code}] ${report!.message}` : event.error;
      const failures = context.failedAttempts[p]?.length ?? 1;
      const failure: SupervisorFailure = { code: 'SPS_PARTITION_FAILED', partitions: [p], detail: describe(context, [p]), failures, lastError: error, report };
      const earlier = context.failure;
      // Lost after another: it joins that failure, which stays about the first.
      const joined =
        earlier?.code === 'SPS_PARTITION_FAILED'
          ? { ...earlier, partitions: [...new Set([...earlier.partitions, p])], detail: describe(context, [...new Set([...earlier.partitions, p])]) }
          : (earlier ?? failure);
      return { lost: { ...context.lost, [p]: { failures, error } }, failure: joined };
    }),
  },
  guards: {
    allServing: ({ context }) => notServing(context).length === 0,
    someUnregistered: ({ context }) => notRegistered(context).length > 0,
    allResultsIn: ({ context }) => resultsMissing(context).length === 0,
    failedBefore: ({ context }) => context.failure !== undefined,
    takesAll: ({ event }) => event.type === 'GAVE_UP' && event.all === true,
    /** An attempt's failure its report says no retry can fix, for a partition not yet lost or done. */
    cannotRetry: ({ context, event }) => {
      if (event.type !== 'STATE' && event.type !== 'ATTEMPT_FAILED') return false;
      const report = event.type === 'STATE' ? (event.state === 'failed' ? event.error : undefined) : event.report;
      if (report?.retryable !== false) return false;
      const current = context.members[event.partition];
      return !(event.partition in context.lost) && !(event.partition in context.results) && (!current || event.attempt >= current.attempt);
    },
    /** A partition that delivered its result, or was lost already, cannot be lost (again); nor can a job whose results are all in. */
    settled: ({ context, event }) =>
      event.type === 'GAVE_UP' && (event.all ? resultsMissing(context).length === 0 : event.partition in context.results || event.partition in context.lost),
  },
  delays: {
    registerTimeout: ({ context }) => context.registerTimeoutMs,
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
    reports: {},
    failedAttempts: {},
    epoch: 0,
    generation: 0,
    stale: 0,
    malformed: 0,
    forged: 0,
  }),
  on: {
    REGISTER: { actions: ['register', 'publishMembers'] },
    STATE: { actions: ['applyState', 'publishMembers'] },
    ATTEMPT_FAILED: { actions: ['attemptFailed', 'publishMembers'] },
    RESULT: { actions: ['acceptResult', 'publishMembers'] },
    MALFORMED: { actions: 'countMalformed' },
    FORGED: { actions: 'countForged' },
    FAULT: { target: '.failed', actions: ['failComponent', 'publishMembers'] },
  },
  initial: 'starting',
  states: {
    starting: {
      always: { guard: 'allServing', target: 'running' },
      initial: 'launching',
      states: {
        // The Spark application's start and the submit have timeouts of their own.
        launching: { on: { LAUNCHED: 'launched' } },
        launched: {
          after: {
            registerTimeout: { guard: 'someUnregistered', target: '#supervisor.failed', actions: 'failRegister' },
            startTimeout: { target: '#supervisor.failed', actions: 'failStart' },
          },
        },
      },
      on: {
        GAVE_UP: [{ guard: 'settled' }, { target: 'failed', actions: ['markLost', 'failLost'] }],
        STOP: 'stopping',
        ...notRetried('failed'),
      },
    },
    running: {
      on: {
        GAVE_UP: [
          { guard: 'settled' },
          { guard: 'takesAll', target: 'failed', actions: ['failLost', 'markLost', 'publishMembers'] },
          { target: 'degraded', actions: ['failLost', 'markLost'] },
        ],
        STOP: 'stopping',
        ...notRetried('degraded'),
      },
    },
    // A partition is lost for good; the others serve on until STOP collects what they produced.
    degraded: {
      on: {
        GAVE_UP: [
          { guard: 'settled' },
          { guard: 'takesAll', target: 'failed', actions: ['markLost', 'publishMembers'] },
          // Another partition lost: it owes no result either, and the failure names it too.
          { actions: ['failLost', 'markLost', 'publishMembers'] },
        ],
        STOP: 'stopping',
        ...notRetried(),
      },
    },
    stopping: {
      entry: 'broadcastShutdown',
      always: [
        { guard: and(['allResultsIn', 'failedBefore']), target: 'failed' },
        { guard: 'allResultsIn', target: 'stopped' },
      ],
      after: { stopTimeout: { target: 'failed', actions: 'failStop' } },
      on: {
        // A retry that registers after shutdown was broadcast must hear it too.
        REGISTER: { actions: ['register', 'publishMembers', 'broadcastShutdown'] },
        GAVE_UP: [{ guard: 'settled' }, { actions: ['failLost', 'markLost'] }],
        ...notRetried(),
      },
    },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});
