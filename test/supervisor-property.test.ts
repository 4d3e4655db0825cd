/**
 * A seeded, replayable property test of the supervisor machine: random sequences of launch,
 * register, state, attempt failed, lost, result, fault, stop and time passing, stepped through
 * xstate's pure `transition()` on a simulated clock, against the invariants every run must keep.
 * A failure prints fast-check's seed and path; `SPS_PROPERTY_SEED=<seed>` replays that run.
 */
import test from 'ava';
import fc from 'fast-check';
import { resultsMissing, supervisorMachine, type SupervisorContext, type SupervisorEvent } from '../src/actors/supervisor.js';
import { memberEvents } from '../src/driver/cluster-events.js';
import { PureRun } from './helpers/pure-machine.js';

const SEED = process.env.SPS_PROPERTY_SEED ? Number(process.env.SPS_PROPERTY_SEED) : 20261205;
const RUNS = 2000;
/** An attempt's states in the order it passes them ('failed' may follow any). */
const LIFECYCLE = ['registered', 'serving', 'draining', 'finished'];
const TIMEOUTS = { registerTimeoutMs: 3000, startTimeoutMs: 5000, stopTimeoutMs: 4000 };

/** One step of a sequence; attempts are relative, so every sequence means something. */
type Step =
  | { k: 'launched' | 'stop' | 'fault' }
  | { k: 'register'; p: number; newer: boolean }
  | { k: 'state'; p: number; state: 'serving' | 'draining' | 'finished' | 'failed'; older: boolean }
  | { k: 'attemptFailed' | 'result'; p: number; older: boolean }
  | { k: 'lost'; p: number; all: boolean }
  | { k: 'advance'; ms: number };

function steps(partitions: number): fc.Arbitrary<Step[]> {
  const p = fc.integer({ min: 0, max: partitions - 1 });
  const step: fc.Arbitrary<Step> = fc.oneof(
    { arbitrary: fc.constantFrom<Step>({ k: 'launched' }, { k: 'stop' }), weight: 1 },
    { arbitrary: fc.constant<Step>({ k: 'fault' }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('register' as const), p, newer: fc.boolean() }), weight: 4 },
    {
      arbitrary: fc.record({ k: fc.constant('state' as const), p, state: fc.constantFrom('serving', 'draining', 'finished', 'failed'), older: fc.boolean() }),
      weight: 6,
    },
    { arbitrary: fc.record({ k: fc.constantFrom('attemptFailed' as const, 'result' as const), p, older: fc.boolean() }), weight: 3 },
    { arbitrary: fc.record({ k: fc.constant('lost' as const), p, all: fc.boolean() }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 3000 }) }), weight: 2 },
  );
  return fc.array(step, { maxLength: 40 });
}

/** The machine's event for a step: attempts follow the member the machine knows (or an older one). */
function eventOf(s: Step, ctx: SupervisorContext): SupervisorEvent {
  const attemptOf = (p: number, older: boolean): number => Math.max(0, (ctx.members[p]?.attempt ?? 0) - (older ? 1 : 0));
  switch (s.k) {
    case 'launched':
      return { type: 'LAUNCHED' };
    case 'stop':
      return { type: 'STOP' };
    case 'fault':
      return { type: 'FAULT', component: 'nats-server', error: 'exited' };
    case 'register': {
      const attempt = (ctx.members[s.p]?.attempt ?? -1) + (s.newer || !ctx.members[s.p] ? 1 : 0);
      return { type: 'REGISTER', registration: { partition: s.p, attempt, host: 'h', port: null, pid: 1000 + attempt, endpoints: [] } };
    }
    case 'state':
      return {
        type: 'STATE',
        partition: s.p,
        attempt: attemptOf(s.p, s.older),
        state: s.state,
        ...(s.state === 'failed' ? { error: { code: 'X', message: 'x' } } : {}),
      };
    case 'attemptFailed':
      return { type: 'ATTEMPT_FAILED', partition: s.p, attempt: attemptOf(s.p, s.older), error: 'killed by SIGKILL' };
    case 'result':
      return { type: 'RESULT', partition: s.p, attempt: attemptOf(s.p, s.older), records: [s.p] };
    case 'lost':
      return { type: 'GAVE_UP', partition: s.p, failures: 1, error: 'killed by SIGKILL', all: s.all };
    case 'advance':
      throw new Error('time is not an event');
  }
}

/** Runs one sequence, then a STOP and the stop timeout, checking the invariants on the way. */
function check(partitions: number, sequence: Step[]): void {
  const run = new PureRun(supervisorMachine, { partitions, ...TIMEOUTS });
  let stoppedAt: number | undefined;
  const reached = new Map<string, number>();
  const step = (apply: () => void): void => {
    const before = run.snapshot.context;
    apply();
    const after = run.snapshot.context;
    for (const e of memberEvents(before, after)) {
      if (e.kind !== 'lost' && before.lost[e.partition]) throw new Error(`partition ${e.partition} had a "${e.kind}" event after it was lost`);
      // One attempt's events only go forward through its lifecycle.
      const key = `${e.partition}/${e.attempt}`;
      const rank = LIFECYCLE.indexOf(e.kind);
      if (rank >= 0 && rank < (reached.get(key) ?? -1)) throw new Error(`partition ${e.partition} attempt ${e.attempt}: "${e.kind}" after a later state`);
      if (rank >= 0) reached.set(key, rank);
    }
    for (const p of Object.keys(after.results)) if (p in after.lost) throw new Error(`partition ${p} has both a result and a loss`);
    if (stoppedAt !== undefined && run.now >= stoppedAt + TIMEOUTS.stopTimeoutMs && run.snapshot.status !== 'done') {
      throw new Error(`still ${JSON.stringify(run.value)} ${run.now - stoppedAt} ms after STOP (stop timeout ${TIMEOUTS.stopTimeoutMs} ms)`);
    }
  };
  const send = (event: SupervisorEvent): void => {
    step(() => run.send(event));
    if (event.type === 'STOP' && stoppedAt === undefined && run.snapshot.status === 'active') stoppedAt = run.now;
  };
  for (const s of sequence) {
    if (run.snapshot.status === 'done') break;
    if (s.k === 'advance') step(() => run.advance(s.ms));
    else send(eventOf(s, run.snapshot.context));
  }
  if (run.snapshot.status === 'active') send({ type: 'STOP' });
  step(() => run.advance(TIMEOUTS.stopTimeoutMs));
  // The run is over: one outcome each, and nothing the machine still waits for.
  if (run.snapshot.status !== 'done') throw new Error(`not done ${TIMEOUTS.stopTimeoutMs} ms after STOP: ${JSON.stringify(run.value)}`);
  if (run.pendingDelays().length > 0) throw new Error(`timers left running: ${run.pendingDelays().join(', ')}`);
  const ctx = run.snapshot.context;
  if (run.value === 'stopped') {
    if (resultsMissing(ctx).length > 0 || Object.keys(ctx.lost).length > 0) throw new Error('stopped without every result');
    // A member that delivered is finished, whichever of its result and its states came first.
    const open = Object.values(ctx.members).filter((m) => ctx.results[m.partition]?.attempt === m.attempt && m.state !== 'finished' && m.state !== 'failed');
    if (open.length > 0) throw new Error(`stopped with members ${open.map((m) => `${m.partition}:${m.state}`).join(', ')} not finished`);
  } else if (run.value !== 'failed' || !ctx.failure) {
    throw new Error(`ended ${JSON.stringify(run.value)} without a failure`);
  } else if (ctx.failure.code === 'SPS_PARTITION_FAILED') {
    const named = [...ctx.failure.partitions].sort();
    const lost = Object.keys(ctx.lost).map(Number).sort();
    if (JSON.stringify(named) !== JSON.stringify(lost.filter((p) => named.includes(p))) || !named.every((p) => p in ctx.lost)) {
      throw new Error(`the failure names ${named.join(',')} but the lost partitions are ${lost.join(',')}`);
    }
  }
}

test(`supervisor: ${RUNS} random sequences (seed ${SEED}) keep one outcome per partition, no event after lost, each attempt's events in lifecycle order, every delivering member finished, a stop that settles within its timeout, and no timer left`, (t) => {
  const property = fc.property(
    fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(fc.constant(n), steps(n))),
    ([n, sequence]) => check(n, sequence),
  );
  const details = fc.check(property, { seed: SEED, numRuns: RUNS });
  t.false(details.failed, details.failed ? `${fc.defaultReportMessage(details)}` : '');
  t.is(details.numRuns, RUNS);
});
