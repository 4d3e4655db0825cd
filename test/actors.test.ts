import test from 'ava';
import { partitionServerMachine } from '../src/actors/partition-server.js';
import { supervisorMachine } from '../src/actors/supervisor.js';
import { sparkJobMachine } from '../src/actors/spark-job.js';
import { memberEvents } from '../src/driver/cluster-events.js';
import type { Registration } from '../src/protocol/types.js';
import { PureRun } from './helpers/pure-machine.js';

// The machines are pure: these tests step them with xstate's transition() and finish their
// effects by hand, on a simulated clock. No actor runs, no promise or timer is involved.

const BINDING = { host: '127.0.0.1', port: 1234 };

function partition() {
  const run = new PureRun(partitionServerMachine, { partition: 3, attempt: 1 });
  const visited = () => run.effectsOf('reportState').map((p) => p.state);
  return { run, visited };
}

/** Finishes the start-up effects in order, up to serving. */
function toServing(run: PureRun<typeof partitionServerMachine>, shutdown = false): void {
  run.done('initPartition').done('listen', BINDING).done('register', { shutdown }).done('openEndpoints');
}

test('partition server visits initializing → registered → serving → draining → finished, invoking each effect once with its input', (t) => {
  const { run, visited } = partition();
  t.deepEqual(run.value, { initializing: 'loading' });
  t.deepEqual(run.running(), ['initPartition']);
  toServing(run);
  t.is(run.value, 'serving');
  t.deepEqual(run.snapshot.context.binding, BINDING);
  t.deepEqual(run.running(), []);
  run.send({ type: 'SHUTDOWN' });
  t.is(run.value, 'draining');
  run.done('drain');
  t.is(run.snapshot.status, 'done');
  t.is(run.value, 'finished');
  t.deepEqual(visited(), ['initializing', 'registered', 'serving', 'draining', 'finished']);
  t.deepEqual(
    run.invoked.map((i) => i.src),
    ['initPartition', 'listen', 'register', 'openEndpoints', 'drain'],
  );
  t.deepEqual(run.invoked.find((i) => i.src === 'register')!.input, { partition: 3, attempt: 1, ...BINDING });
});

test('a throw in initPartition fails the partition with that error, its code and its stack', (t) => {
  const { run, visited } = partition();
  const thrown = Object.assign(new Error('bad rows'), { code: 'USER_CODE' });
  run.error('initPartition', thrown);
  t.is(run.value, 'failed');
  t.deepEqual(run.snapshot.context.error, { code: 'USER_CODE', message: 'bad rows', stack: thrown.stack });
  t.deepEqual(visited(), ['initializing', 'failed']);
  t.deepEqual(run.running(), []);
});

test('a shutdown that arrives at any step of initializing is honoured once serving', (t) => {
  for (const step of ['initPartition', 'listen', 'register', 'openEndpoints'] as const) {
    const { run, visited } = partition();
    const order = ['initPartition', 'listen', 'register', 'openEndpoints'] as const;
    const outputs = { initPartition: undefined, listen: BINDING, register: { shutdown: false }, openEndpoints: undefined };
    for (const src of order) {
      if (src === step) run.send({ type: 'SHUTDOWN' });
      run.done(src, outputs[src]);
    }
    t.is(run.value, 'draining', `shutdown during ${step}`);
    run.done('drain');
    t.deepEqual(visited(), ['initializing', 'registered', 'serving', 'draining', 'finished'], `shutdown during ${step}`);
  }
});

test('registering into a stopping cluster drains right after serving', (t) => {
  const { run, visited } = partition();
  toServing(run, true);
  t.is(run.value, 'draining');
  run.done('drain');
  t.deepEqual(visited(), ['initializing', 'registered', 'serving', 'draining', 'finished']);
});

test('FAIL while serving or draining goes to failed with the given error, and stops what was running', (t) => {
  const serving = partition();
  toServing(serving.run);
  serving.run.send({ type: 'FAIL', error: { code: 'SPS_NATS_CLOSED', message: 'gone' } });
  t.is(serving.run.value, 'failed');
  t.is(serving.run.snapshot.context.error?.code, 'SPS_NATS_CLOSED');
  t.deepEqual(serving.visited(), ['initializing', 'registered', 'serving', 'failed']);

  const draining = partition();
  toServing(draining.run);
  draining.run.send({ type: 'SHUTDOWN' });
  t.deepEqual(draining.run.running(), ['drain']);
  draining.run.send({ type: 'FAIL', error: { code: 'SPS_DRIVER_LOST', message: 'silent' } });
  t.is(draining.run.value, 'failed');
  t.deepEqual(draining.run.running(), []);
});

test('a failing drain fails the partition with its error; a late SHUTDOWN after the end changes nothing', (t) => {
  const { run, visited } = partition();
  toServing(run);
  run.send({ type: 'SHUTDOWN' }).error('drain', new Error('result too big'));
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.error, { code: 'SPS_PARTITION_ERROR', message: 'result too big' });
  run.send({ type: 'SHUTDOWN' });
  t.deepEqual(visited(), ['initializing', 'registered', 'serving', 'draining', 'failed']);
});

function supervisor(partitions = 2, startTimeoutMs = 60_000, stopTimeoutMs = 60_000, registerTimeoutMs = 60_000) {
  const run = new PureRun(supervisorMachine, { partitions, registerTimeoutMs, startTimeoutMs, stopTimeoutMs });
  // The start timeouts run from the launch (the Spark application and the submit have their own).
  run.send({ type: 'LAUNCHED' });
  return { run, published: () => run.effectsOf('publishMembers').length, shutdowns: () => run.effectsOf('broadcastShutdown').length };
}

const reg = (partition: number, attempt: number): Registration => ({
  partition,
  attempt,
  host: 'h',
  port: 1000 + partition,
  pid: 100 + attempt,
  endpoints: [],
});

function serve(run: PureRun<typeof supervisorMachine>, partition: number, attempt: number): void {
  run.send({ type: 'REGISTER', registration: reg(partition, attempt) });
  run.send({ type: 'STATE', partition, attempt, state: 'serving' });
}

test('supervisor runs once every partition serves, and publishes membership on each change', (t) => {
  const { run, published } = supervisor(2);
  serve(run, 0, 0);
  t.deepEqual(run.value, { starting: 'launched' });
  serve(run, 1, 0);
  t.is(run.value, 'running');
  t.is(published(), 4);
  t.deepEqual(
    Object.values(run.snapshot.context.members).map((m) => [m.partition, m.attempt, m.port, m.state]),
    [
      [0, 0, 1000, 'serving'],
      [1, 0, 1001, 'serving'],
    ],
  );
  // Running cancels the start timeout: no time that passes fails the run.
  t.deepEqual(run.pendingDelays(), []);
  run.advance(10 * 60_000);
  t.is(run.value, 'running');
});

test('a newer attempt replaces the member; the old attempt is ignored afterwards', (t) => {
  const { run } = supervisor(1);
  serve(run, 0, 0);
  run.send({ type: 'ATTEMPT_FAILED', partition: 0, attempt: 0, error: 'killed by SIGKILL' });
  t.is(run.snapshot.context.members[0]!.state, 'failed');
  serve(run, 0, 1);
  const before = run.snapshot.context;
  t.is(before.members[0]!.attempt, 1);
  run.send({ type: 'STATE', partition: 0, attempt: 0, state: 'failed' });
  run.send({ type: 'REGISTER', registration: reg(0, 0) });
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['late'] });
  const after = run.snapshot.context;
  t.deepEqual(after.members, before.members);
  t.is(after.stale, before.stale + 3);
  t.false(0 in after.results);
});

test('the generation rises only when a member fails or is replaced, not on other changes', (t) => {
  const { run } = supervisor(2);
  const generation = (): number => run.snapshot.context.generation;
  serve(run, 0, 0);
  serve(run, 1, 0);
  t.is(generation(), 0, 'first registrations and state changes keep it');
  run.send({ type: 'ATTEMPT_FAILED', partition: 1, attempt: 0, error: 'killed by SIGKILL' });
  t.is(generation(), 1, 'a member that fails raises it');
  run.send({ type: 'STATE', partition: 1, attempt: 0, state: 'failed' });
  t.is(generation(), 1, 'the same failure heard twice does not');
  serve(run, 1, 1);
  t.is(generation(), 2, 'a newer attempt replacing the member raises it');
  run.send({ type: 'REGISTER', registration: reg(1, 0) });
  t.is(generation(), 2, 'a stale attempt does not');
  run.send({ type: 'STATE', partition: 0, attempt: 0, state: 'failed', error: { code: 'X', message: 'x' } });
  t.is(generation(), 3, 'a member reporting failed raises it');
  run.send({ type: 'STOP' });
  run.send({ type: 'STATE', partition: 1, attempt: 1, state: 'draining' });
  t.is(generation(), 3, 'draining does not');
});

test('results are accepted once per partition, from the current attempt', (t) => {
  const { run, shutdowns } = supervisor(2);
  serve(run, 0, 0);
  serve(run, 1, 0);
  run.send({ type: 'STOP' });
  t.is(shutdowns(), 1);
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['again'] });
  t.is(run.value, 'stopping');
  run.send({ type: 'RESULT', partition: 1, attempt: 0, records: ['b'] });
  t.is(run.value, 'stopped');
  t.deepEqual(run.snapshot.context.results, { 0: { attempt: 0, records: ['a'] }, 1: { attempt: 0, records: ['b'] } });
});

test("a result that arrives before its partition's draining and finished states finishes the member; the late states change nothing, and the member events still go draining → finished", (t) => {
  const { run } = supervisor(2);
  serve(run, 0, 0);
  serve(run, 1, 0);
  run.send({ type: 'STOP' });
  // Partition 1 as usual: its states, then its result.
  run.send({ type: 'STATE', partition: 1, attempt: 0, state: 'draining' });
  run.send({ type: 'STATE', partition: 1, attempt: 0, state: 'finished' });
  const before = run.snapshot.context;
  run.send({ type: 'RESULT', partition: 1, attempt: 0, records: ['b'] });
  t.is(run.snapshot.context.members[1]!.state, 'finished');
  // Partition 0's result first: the last result ends the run before its states come.
  const beforeLast = run.snapshot.context;
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  t.is(run.value, 'stopped');
  const after = run.snapshot.context;
  t.is(after.members[0]!.state, 'finished');
  t.true(after.epoch > beforeLast.epoch, 'the membership changed, so its epoch rose');
  t.deepEqual(
    memberEvents(beforeLast, after).map((e) => `p${e.partition} ${e.kind} ${e.state}`),
    ['p0 draining draining', 'p0 finished finished'],
  );
  t.deepEqual(
    memberEvents(before, run.snapshot.context).filter((e) => e.partition === 1),
    [],
    'partition 1 said it all already',
  );
  // In a run still stopping, a late draining after the result does not move the member back.
  const other = supervisor(2).run;
  serve(other, 0, 0);
  serve(other, 1, 0);
  other.send({ type: 'STOP' });
  other.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  const early = other.snapshot.context;
  other.send({ type: 'STATE', partition: 0, attempt: 0, state: 'draining' });
  other.send({ type: 'STATE', partition: 0, attempt: 0, state: 'finished' });
  t.is(other.snapshot.context.members[0]!.state, 'finished');
  t.deepEqual(memberEvents(early, other.snapshot.context), []);
});

test('start timeout fails at exactly startTimeoutMs, naming the partitions that are not serving', (t) => {
  const { run } = supervisor(3, 5000);
  serve(run, 1, 0);
  run.send({ type: 'REGISTER', registration: reg(2, 0) });
  run.advance(4999);
  t.deepEqual(run.value, { starting: 'launched' });
  run.advance(1);
  t.is(run.value, 'failed');
  const failure = run.snapshot.context.failure!;
  t.is(failure.code, 'SPS_START_TIMEOUT');
  t.deepEqual(failure.partitions, [0, 2]);
  t.regex(failure.detail, /partition 0: never registered; partition 2: attempt 0 registered/);
});

test('register timeout fails at exactly registerTimeoutMs naming the partitions whose worker never registered; once all registered it passes', (t) => {
  const { run } = supervisor(3, 60_000, 60_000, 5000);
  serve(run, 1, 0);
  run.send({ type: 'REGISTER', registration: reg(2, 0) });
  run.advance(4999);
  t.deepEqual(run.value, { starting: 'launched' });
  run.advance(1);
  t.like(run.snapshot.context.failure, { code: 'SPS_START_TIMEOUT', stage: 'register', partitions: [0] });

  const { run: all } = supervisor(2, 60_000, 60_000, 5000);
  serve(all, 0, 0);
  all.send({ type: 'REGISTER', registration: reg(1, 0) });
  all.advance(5000);
  t.deepEqual(all.value, { starting: 'launched' }, 'everyone registered in time: the start waits on for partition 1 to serve');
  all.send({ type: 'STATE', partition: 1, attempt: 0, state: 'serving' });
  t.is(all.value, 'running');
});

test('the start timeouts run only once the partitions are launched', (t) => {
  const run = new PureRun(supervisorMachine, { partitions: 1, registerTimeoutMs: 10, startTimeoutMs: 10, stopTimeoutMs: 10 });
  run.advance(1_000_000);
  t.deepEqual(run.value, { starting: 'launching' });
  run.send({ type: 'LAUNCHED' });
  run.advance(10);
  t.like(run.snapshot.context.failure, { code: 'SPS_START_TIMEOUT', stage: 'register' });
});

test('stop timeout fails at exactly stopTimeoutMs naming the partitions whose result is missing; the results in are kept', (t) => {
  const { run } = supervisor(3, 60_000, 2000);
  for (const p of [0, 1, 2]) serve(run, p, 0);
  run.advance(30_000).send({ type: 'STOP' });
  t.deepEqual(run.pendingDelays(), [2000]);
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  run.advance(1000).send({ type: 'RESULT', partition: 2, attempt: 0, records: ['c'] });
  run.advance(999);
  t.is(run.value, 'stopping');
  run.advance(1);
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_STOP_TIMEOUT', partitions: [1] });
  t.deepEqual(Object.keys(run.snapshot.context.results), ['0', '2']);
});

test('a partition that gives up while starting fails the supervisor with its last error', (t) => {
  const { run } = supervisor(2);
  serve(run, 0, 0);
  run.send({ type: 'GAVE_UP', partition: 1, failures: 4, error: 'exited with code 1: init broke' });
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1], failures: 4, lastError: 'exited with code 1: init broke' });
});

test("a failure a retry cannot fix fails the starting supervisor at once, with the worker's report; a retryable one waits for the retry", (t) => {
  const { run } = supervisor(2);
  serve(run, 0, 0);
  run.send({ type: 'STATE', partition: 1, attempt: 0, state: 'failed', error: { code: 'E_FLAKY', message: 'try again', stack: 'Error: try again' } });
  t.deepEqual(run.value, { starting: 'launched' });
  const report = { code: 'SPS_UWS_LOAD', message: 'no uWS binary loads', stack: 'Error: no uWS binary loads\n    at load (x.ts:1:1)', retryable: false };
  run.send({ type: 'STATE', partition: 1, attempt: 1, state: 'failed', error: report });
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1], failures: 2, lastError: '[SPS_UWS_LOAD] no uWS binary loads', report });
  t.deepEqual(run.snapshot.context.lost, { 1: { failures: 2, error: '[SPS_UWS_LOAD] no uWS binary loads' } });
});

test("after start, a failure a retry cannot fix (from the launcher) degrades the run at once; a stale attempt's is ignored", (t) => {
  const { run } = supervisor(3);
  for (const p of [0, 1, 2]) serve(run, p, 0);
  serve(run, 2, 1);
  const report = { code: 'SPS_SERVER_MODULE', message: 'has no export "default"', retryable: false };
  // Attempt 0 of partition 2 was replaced: what it says cannot lose the partition.
  run.send({ type: 'ATTEMPT_FAILED', partition: 2, attempt: 0, error: 'exited with code 1', report });
  t.is(run.value, 'running');
  run.send({ type: 'ATTEMPT_FAILED', partition: 1, attempt: 0, error: 'exited with code 1: [SPS_SERVER_MODULE] has no export "default"', report });
  t.is(run.value, 'degraded');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1], failures: 1, report });
  t.is(run.snapshot.context.members[1]!.state, 'failed');
  // The membership carries code and message, never the stack.
  t.deepEqual(Object.keys(run.snapshot.context.members[1]!.error!), ['code', 'message']);
  run.send({ type: 'STOP' });
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  run.send({ type: 'RESULT', partition: 2, attempt: 1, records: ['c'] });
  t.is(run.value, 'failed');
});

test('while stopping, a failure a retry cannot fix settles its partition at once instead of waiting for the stop timeout', (t) => {
  const { run } = supervisor(2);
  for (const p of [0, 1]) serve(run, p, 0);
  run.send({ type: 'STOP' });
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  run.send({ type: 'STATE', partition: 1, attempt: 0, state: 'failed', error: { code: 'E_FINAL', message: 'cannot build the result', retryable: false } });
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1], failures: 1 });
});

test('a partition lost after start degrades the run at once; STOP still collects the others, and ends failed naming it', (t) => {
  const { run } = supervisor(3);
  for (const p of [0, 1, 2]) serve(run, p, 0);
  t.is(run.value, 'running');
  run.send({ type: 'GAVE_UP', partition: 1, failures: 4, error: 'killed by SIGKILL' });
  t.is(run.value, 'degraded');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1] });
  run.send({ type: 'STOP' });
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  t.is(run.value, 'stopping');
  run.send({ type: 'RESULT', partition: 2, attempt: 0, records: ['c'] });
  t.is(run.value, 'failed');
  t.deepEqual(Object.keys(run.snapshot.context.results), ['0', '2']);
});

test('a second partition lost after start is taken in too: its own lost entry, the failure names both, and STOP settles with the third result', (t) => {
  const { run, shutdowns } = supervisor(3, 60_000, 60_000);
  for (const p of [0, 1, 2]) serve(run, p, 0);
  run.send({ type: 'ATTEMPT_FAILED', partition: 1, attempt: 0, error: 'killed by SIGKILL' });
  run.send({ type: 'GAVE_UP', partition: 1, failures: 1, error: 'killed by SIGKILL' });
  t.is(run.value, 'degraded');
  run.advance(5000);
  run.send({ type: 'ATTEMPT_FAILED', partition: 2, attempt: 0, error: 'killed by SIGTERM' });
  run.send({ type: 'GAVE_UP', partition: 2, failures: 1, error: 'killed by SIGTERM' });
  t.is(run.value, 'degraded');
  t.deepEqual(Object.keys(run.snapshot.context.lost), ['1', '2']);
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1, 2] });
  run.send({ type: 'STOP' });
  t.is(shutdowns(), 1);
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  // Settled by the last result, not by the stop timeout.
  t.is(run.value, 'failed');
  t.deepEqual(run.pendingDelays(), []);
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1, 2] });
  t.regex(run.snapshot.context.failure!.detail, /partition 1: .*killed by SIGKILL; partition 2: .*killed by SIGTERM/);
});

test('a partition lost while stopping is added to the failure, not put in place of the earlier one', (t) => {
  const { run } = supervisor(3);
  for (const p of [0, 1, 2]) serve(run, p, 0);
  run.send({ type: 'GAVE_UP', partition: 0, failures: 2, error: 'first' });
  run.send({ type: 'STOP' });
  run.send({ type: 'GAVE_UP', partition: 2, failures: 1, error: 'second' });
  run.send({ type: 'RESULT', partition: 1, attempt: 0, records: [] });
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [0, 2], failures: 2, lastError: 'first' });
});

test('nothing said for a lost partition afterwards changes it, and a failed job does not lose a partition whose result is in', (t) => {
  const { run } = supervisor(2);
  for (const p of [0, 1]) serve(run, p, 0);
  run.send({ type: 'GAVE_UP', partition: 1, failures: 1, error: 'killed by SIGKILL' });
  const before = run.snapshot.context;
  run.send({ type: 'STATE', partition: 1, attempt: 0, state: 'draining' });
  run.send({ type: 'REGISTER', registration: reg(1, 1) });
  run.send({ type: 'RESULT', partition: 1, attempt: 0, records: ['late'] });
  t.deepEqual(run.snapshot.context.members, before.members);
  t.deepEqual(run.snapshot.context.results, {});
  t.is(run.snapshot.context.stale, before.stale + 3);

  const job = supervisor(2);
  for (const p of [0, 1]) serve(job.run, p, 0);
  job.run.send({ type: 'STOP' }).send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  job.run.send({ type: 'GAVE_UP', partition: 0, failures: 4, error: 'stage failed', all: true });
  t.deepEqual(Object.keys(job.run.snapshot.context.lost), ['1']);
  t.like(job.run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1] });
});

test('a lost component fails the run at once and marks every member that owed a result', (t) => {
  const { run } = supervisor(2);
  for (const p of [0, 1]) serve(run, p, 0);
  run.send({ type: 'FAULT', component: 'nats-server', error: 'exited with SIGKILL' });
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_COMPONENT_LOST', component: 'nats-server', partitions: [0, 1] });
  t.deepEqual(
    Object.values(run.snapshot.context.members).map((m) => m.state),
    ['failed', 'failed'],
  );
});

test("a failed Spark job (GAVE_UP with all) takes every member down and fails the run with the job's error", (t) => {
  const { run } = supervisor(3);
  for (const p of [0, 1, 2]) serve(run, p, 0);
  run.send({ type: 'GAVE_UP', partition: 2, failures: 4, error: 'Task 2 in stage 1.0 failed 4 times', all: true });
  t.is(run.value, 'failed');
  t.like(run.snapshot.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [2], lastError: 'Task 2 in stage 1.0 failed 4 times' });
  t.deepEqual(
    Object.values(run.snapshot.context.members).map((m) => m.state),
    ['failed', 'failed', 'failed'],
  );
});

test('a result from a partition that never registered, or from another attempt, is not accepted', (t) => {
  const { run } = supervisor(2);
  serve(run, 0, 1);
  run.send({ type: 'RESULT', partition: 1, attempt: 0, records: ['never registered'] });
  run.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['old attempt'] });
  t.deepEqual(run.snapshot.context.results, {});
  t.is(run.snapshot.context.stale, 2);
  run.send({ type: 'RESULT', partition: 0, attempt: 1, records: ['current'] });
  t.deepEqual(run.snapshot.context.results, { 0: { attempt: 1, records: ['current'] } });
});

test('registrations out of range are refused', (t) => {
  const { run } = supervisor(2);
  run.send({ type: 'REGISTER', registration: reg(5, 0) });
  t.deepEqual(run.snapshot.context.members, {});
  t.is(run.snapshot.context.stale, 1);
});

function sparkJob(partitions = 2) {
  const run = new PureRun(sparkJobMachine, { partitions, maxFailures: 4 });
  const reports = () => [
    ...run.effects.flatMap((e) => {
      const p = e.params as { partition: number; attempt: number; records: unknown[]; failures: number; error: string };
      if (e.type === 'reportResult') return [`result p${p.partition}/a${p.attempt}: ${JSON.stringify(p.records)}`];
      if (e.type === 'reportGaveUp') return [`gave up p${p.partition} after ${p.failures}: ${p.error}`];
      return [];
    }),
  ];
  return { run, reports, cancels: () => run.effectsOf('requestCancel').length };
}

test('spark job: result chunks are assembled per partition in sequence and reported once, with their attempt', (t) => {
  const { run, reports } = sparkJob(2);
  run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 1, seq: 0, records: [1, 2], last: false });
  run.send({ type: 'RESULT_CHUNK', partition: 1, attempt: 0, seq: 0, records: [], last: true });
  // A second "last" chunk for a partition already reported changes nothing.
  run.send({ type: 'RESULT_CHUNK', partition: 1, attempt: 0, seq: 0, records: ['again'], last: true });
  run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 1, seq: 1, records: [3], last: true });
  run.send({ type: 'JOB_FINISHED', dataset: { id: 'ds1', records: 3 } });
  t.deepEqual(reports(), ['result p1/a0: []', 'result p0/a1: [1,2,3]']);
  t.is(run.value, 'finished');
  t.deepEqual(run.snapshot.context.dataset, { id: 'ds1', records: 3 });
});

test('spark job: a chunk out of sequence, from another attempt, or for no partition voids nothing but itself and is never reported', (t) => {
  const { run, reports } = sparkJob(2);
  run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 0, records: [1], last: false });
  run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 2, records: [3], last: true }); // seq 1 lost
  run.send({ type: 'RESULT_CHUNK', partition: 1, attempt: 0, seq: 1, records: [9], last: true }); // no seq 0
  run.send({ type: 'RESULT_CHUNK', partition: 7, attempt: 0, seq: 0, records: [9], last: true }); // no such partition
  t.deepEqual(reports(), []);
  t.is(run.snapshot.context.outOfSequence, 2);
  run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 1, seq: 0, records: ['whole'], last: true });
  t.deepEqual(reports(), ['result p0/a1: ["whole"]']);
});

test('spark job: a failed job is blamed on the partition Spark names, or on one still owed', (t) => {
  const named = sparkJob(3);
  named.run.send({ type: 'JOB_FAILED', error: 'Task 2 failed 4 times', cancelled: false, partition: 2, failures: 4 });
  t.deepEqual(named.reports(), ['gave up p2 after 4: Task 2 failed 4 times']);
  const owed = sparkJob(2);
  owed.run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 0, records: [], last: true });
  owed.run.send({ type: 'JOB_FAILED', error: 'stage failed', cancelled: false });
  t.deepEqual(owed.reports().at(-1), 'gave up p1 after 4: stage failed');
  t.is(owed.run.value, 'failed');
});

test('spark job: STOP cancels a job that still owes results, and not one that is ending by itself', (t) => {
  const busy = sparkJob(2);
  busy.run.send({ type: 'STOP' });
  t.is(busy.cancels(), 1);
  busy.run.send({ type: 'JOB_FAILED', error: 'cancelled', cancelled: true });
  t.is(busy.run.value, 'cancelled');
  t.false(busy.reports().some((r) => r.startsWith('gave up')));
  const done = sparkJob(1);
  done.run.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 0, records: ['r'], last: true });
  done.run.send({ type: 'STOP' });
  t.is(done.cancels(), 0);
  done.run.send({ type: 'JOB_FINISHED' });
  t.is(done.run.value, 'finished');
});
