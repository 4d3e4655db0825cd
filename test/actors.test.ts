import test from 'ava';
import { createActor, fromPromise, waitFor } from 'xstate';
import { partitionServerMachine, type Binding } from '../src/actors/partition-server.js';
import { supervisorMachine } from '../src/actors/supervisor.js';
import { sparkJobMachine } from '../src/actors/spark-job.js';
import type { PartitionState, Registration } from '../src/protocol/types.js';

// The machines are pure: these tests supply their effects directly, without NATS or processes.

function partitionActor(overrides: { initPartition?: () => Promise<void>; register?: () => Promise<{ shutdown: boolean }> } = {}) {
  const visited: PartitionState[] = [];
  let drained = 0;
  const machine = partitionServerMachine.provide({
    actors: {
      initPartition: fromPromise(overrides.initPartition ?? (async () => {})),
      listen: fromPromise(async (): Promise<Binding> => ({ host: '127.0.0.1', port: 1234 })),
      register: fromPromise(overrides.register ?? (async () => ({ shutdown: false }))),
      openEndpoints: fromPromise(async () => {}),
      drain: fromPromise(async () => {
        drained++;
      }),
    },
    actions: { reportState: (_, params) => visited.push(params.state) },
  });
  const actor = createActor(machine, { input: { partition: 3, attempt: 1 } });
  return { actor, visited, drained: () => drained };
}

test('partition server visits initializing → registered → serving → draining → finished', async (t) => {
  const { actor, visited, drained } = partitionActor();
  actor.start();
  await waitFor(actor, (s) => s.value === 'serving');
  t.deepEqual(actor.getSnapshot().context.binding, { host: '127.0.0.1', port: 1234 });
  actor.send({ type: 'SHUTDOWN' });
  const done = await waitFor(actor, (s) => s.status === 'done');
  t.is(done.value, 'finished');
  t.deepEqual(visited, ['initializing', 'registered', 'serving', 'draining', 'finished']);
  t.is(drained(), 1);
});

test('a throw in initPartition fails the partition with that error', async (t) => {
  const { actor, visited } = partitionActor({
    initPartition: async () => {
      throw Object.assign(new Error('bad rows'), { code: 'USER_CODE' });
    },
  });
  actor.start();
  const done = await waitFor(actor, (s) => s.status === 'done');
  t.is(done.value, 'failed');
  t.deepEqual(done.context.error, { code: 'USER_CODE', message: 'bad rows' });
  t.deepEqual(visited, ['initializing', 'failed']);
});

test('a shutdown that arrives while initializing is honoured once serving', async (t) => {
  let release!: () => void;
  const { actor, visited } = partitionActor({ initPartition: () => new Promise<void>((r) => (release = r)) });
  actor.start();
  actor.send({ type: 'SHUTDOWN' });
  release();
  const done = await waitFor(actor, (s) => s.status === 'done');
  t.is(done.value, 'finished');
  t.deepEqual(visited, ['initializing', 'registered', 'serving', 'draining', 'finished']);
});

test('registering into a stopping cluster drains right after serving', async (t) => {
  const { actor, visited } = partitionActor({ register: async () => ({ shutdown: true }) });
  actor.start();
  const done = await waitFor(actor, (s) => s.status === 'done');
  t.is(done.value, 'finished');
  t.deepEqual(visited, ['initializing', 'registered', 'serving', 'draining', 'finished']);
});

test('FAIL while serving goes to failed with the given error', async (t) => {
  const { actor, visited } = partitionActor();
  actor.start();
  await waitFor(actor, (s) => s.value === 'serving');
  actor.send({ type: 'FAIL', error: { code: 'SPS_NATS_CLOSED', message: 'gone' } });
  const done = await waitFor(actor, (s) => s.status === 'done');
  t.is(done.value, 'failed');
  t.is(done.context.error?.code, 'SPS_NATS_CLOSED');
  t.deepEqual(visited, ['initializing', 'registered', 'serving', 'failed']);
});

function supervisor(partitions = 2, startTimeoutMs = 60_000) {
  let published = 0;
  let shutdowns = 0;
  const actor = createActor(
    supervisorMachine.provide({
      actions: {
        publishMembers: () => void published++,
        broadcastShutdown: () => void shutdowns++,
      },
    }),
    { input: { partitions, startTimeoutMs, stopTimeoutMs: 60_000 } },
  );
  actor.start();
  return { actor, published: () => published, shutdowns: () => shutdowns };
}

const reg = (partition: number, attempt: number): Registration => ({
  partition,
  attempt,
  host: 'h',
  port: 1000 + partition,
  pid: 100 + attempt,
  endpoints: [],
});

function serve(actor: ReturnType<typeof supervisor>['actor'], partition: number, attempt: number): void {
  actor.send({ type: 'REGISTER', registration: reg(partition, attempt) });
  actor.send({ type: 'STATE', partition, attempt, state: 'serving' });
}

test('supervisor runs once every partition serves, and publishes membership on each change', (t) => {
  const { actor, published } = supervisor(2);
  serve(actor, 0, 0);
  t.is(actor.getSnapshot().value, 'starting');
  serve(actor, 1, 0);
  t.is(actor.getSnapshot().value, 'running');
  t.is(published(), 4);
  t.deepEqual(
    Object.values(actor.getSnapshot().context.members).map((m) => [m.partition, m.attempt, m.port, m.state]),
    [
      [0, 0, 1000, 'serving'],
      [1, 0, 1001, 'serving'],
    ],
  );
});

test('a newer attempt replaces the member; the old attempt is ignored afterwards', (t) => {
  const { actor } = supervisor(1);
  serve(actor, 0, 0);
  actor.send({ type: 'ATTEMPT_FAILED', partition: 0, attempt: 0, error: 'killed by SIGKILL' });
  t.is(actor.getSnapshot().context.members[0]!.state, 'failed');
  serve(actor, 0, 1);
  const before = actor.getSnapshot().context;
  t.is(before.members[0]!.attempt, 1);
  actor.send({ type: 'STATE', partition: 0, attempt: 0, state: 'failed' });
  actor.send({ type: 'REGISTER', registration: reg(0, 0) });
  actor.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['late'] });
  const after = actor.getSnapshot().context;
  t.deepEqual(after.members, before.members);
  t.is(after.stale, before.stale + 3);
  t.false(0 in after.results);
});

test('the generation rises only when a member fails or is replaced, not on other changes', (t) => {
  const { actor } = supervisor(2);
  const generation = (): number => actor.getSnapshot().context.generation;
  serve(actor, 0, 0);
  serve(actor, 1, 0);
  t.is(generation(), 0, 'first registrations and state changes keep it');
  actor.send({ type: 'ATTEMPT_FAILED', partition: 1, attempt: 0, error: 'killed by SIGKILL' });
  t.is(generation(), 1, 'a member that fails raises it');
  actor.send({ type: 'STATE', partition: 1, attempt: 0, state: 'failed' });
  t.is(generation(), 1, 'the same failure heard twice does not');
  serve(actor, 1, 1);
  t.is(generation(), 2, 'a newer attempt replacing the member raises it');
  actor.send({ type: 'REGISTER', registration: reg(1, 0) });
  t.is(generation(), 2, 'a stale attempt does not');
  actor.send({ type: 'STATE', partition: 0, attempt: 0, state: 'failed', error: { code: 'X', message: 'x' } });
  t.is(generation(), 3, 'a member reporting failed raises it');
  actor.send({ type: 'STOP' });
  actor.send({ type: 'STATE', partition: 1, attempt: 1, state: 'draining' });
  t.is(generation(), 3, 'draining does not');
});

test('results are accepted once per partition, from the current attempt', (t) => {
  const { actor, shutdowns } = supervisor(2);
  serve(actor, 0, 0);
  serve(actor, 1, 0);
  actor.send({ type: 'STOP' });
  t.is(shutdowns(), 1);
  actor.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  actor.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['again'] });
  t.is(actor.getSnapshot().value, 'stopping');
  actor.send({ type: 'RESULT', partition: 1, attempt: 0, records: ['b'] });
  const snap = actor.getSnapshot();
  t.is(snap.value, 'stopped');
  t.deepEqual(snap.context.results, { 0: { attempt: 0, records: ['a'] }, 1: { attempt: 0, records: ['b'] } });
});

test('start timeout fails naming the partitions that are not serving', async (t) => {
  const { actor } = supervisor(3, 50);
  serve(actor, 1, 0);
  actor.send({ type: 'REGISTER', registration: reg(2, 0) });
  const done = await waitFor(actor, (s) => s.status === 'done');
  t.is(done.value, 'failed');
  t.is(done.context.failure?.code, 'SPS_START_TIMEOUT');
  t.deepEqual(done.context.failure?.partitions, [0, 2]);
  t.regex(done.context.failure!.detail, /partition 0: never registered; partition 2: attempt 0 registered/);
});

test('a partition that gives up while starting fails the supervisor with its last error', (t) => {
  const { actor } = supervisor(2);
  serve(actor, 0, 0);
  actor.send({ type: 'GAVE_UP', partition: 1, failures: 4, error: 'exited with code 1: init broke' });
  const snap = actor.getSnapshot();
  t.is(snap.value, 'failed');
  t.like(snap.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1], failures: 4, lastError: 'exited with code 1: init broke' });
});

test('a partition lost after start degrades the run at once; STOP still collects the others, and ends failed naming it', (t) => {
  const { actor } = supervisor(3);
  for (const p of [0, 1, 2]) serve(actor, p, 0);
  t.is(actor.getSnapshot().value, 'running');
  actor.send({ type: 'GAVE_UP', partition: 1, failures: 4, error: 'killed by SIGKILL' });
  t.is(actor.getSnapshot().value, 'degraded');
  t.like(actor.getSnapshot().context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [1] });
  actor.send({ type: 'STOP' });
  actor.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['a'] });
  t.is(actor.getSnapshot().value, 'stopping');
  actor.send({ type: 'RESULT', partition: 2, attempt: 0, records: ['c'] });
  const snap = actor.getSnapshot();
  t.is(snap.value, 'failed');
  t.deepEqual(Object.keys(snap.context.results), ['0', '2']);
});

test('a lost component fails the run at once and marks every member that owed a result', (t) => {
  const { actor } = supervisor(2);
  for (const p of [0, 1]) serve(actor, p, 0);
  actor.send({ type: 'FAULT', component: 'nats-server', error: 'exited with SIGKILL' });
  const snap = actor.getSnapshot();
  t.is(snap.value, 'failed');
  t.like(snap.context.failure, { code: 'SPS_COMPONENT_LOST', component: 'nats-server', partitions: [0, 1] });
  t.deepEqual(
    Object.values(snap.context.members).map((m) => m.state),
    ['failed', 'failed'],
  );
});

test("a failed Spark job (GAVE_UP with all) takes every member down and fails the run with the job's error", (t) => {
  const { actor } = supervisor(3);
  for (const p of [0, 1, 2]) serve(actor, p, 0);
  actor.send({ type: 'GAVE_UP', partition: 2, failures: 4, error: 'Task 2 in stage 1.0 failed 4 times', all: true });
  const snap = actor.getSnapshot();
  t.is(snap.value, 'failed');
  t.like(snap.context.failure, { code: 'SPS_PARTITION_FAILED', partitions: [2], lastError: 'Task 2 in stage 1.0 failed 4 times' });
  t.deepEqual(
    Object.values(snap.context.members).map((m) => m.state),
    ['failed', 'failed', 'failed'],
  );
});

test('a result from a partition that never registered, or from another attempt, is not accepted', (t) => {
  const { actor } = supervisor(2);
  serve(actor, 0, 1);
  actor.send({ type: 'RESULT', partition: 1, attempt: 0, records: ['never registered'] });
  actor.send({ type: 'RESULT', partition: 0, attempt: 0, records: ['old attempt'] });
  t.deepEqual(actor.getSnapshot().context.results, {});
  t.is(actor.getSnapshot().context.stale, 2);
  actor.send({ type: 'RESULT', partition: 0, attempt: 1, records: ['current'] });
  t.deepEqual(actor.getSnapshot().context.results, { 0: { attempt: 1, records: ['current'] } });
});

test('registrations out of range are refused', (t) => {
  const { actor } = supervisor(2);
  actor.send({ type: 'REGISTER', registration: reg(5, 0) });
  t.deepEqual(actor.getSnapshot().context.members, {});
  t.is(actor.getSnapshot().context.stale, 1);
});

function sparkJob(partitions = 2) {
  const reports: string[] = [];
  let cancels = 0;
  const actor = createActor(
    sparkJobMachine.provide({
      actions: {
        reportResult: (_, p) => void reports.push(`result p${p.partition}/a${p.attempt}: ${JSON.stringify(p.records)}`),
        reportGaveUp: (_, p) => void reports.push(`gave up p${p.partition} after ${p.failures}: ${p.error}`),
        requestCancel: () => void cancels++,
      },
    }),
    { input: { partitions, maxFailures: 4 } },
  );
  actor.start();
  return { actor, reports, cancels: () => cancels };
}

test('spark job: result chunks are assembled per partition in sequence and reported once, with their attempt', (t) => {
  const { actor, reports } = sparkJob(2);
  actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 1, seq: 0, records: [1, 2], last: false });
  actor.send({ type: 'RESULT_CHUNK', partition: 1, attempt: 0, seq: 0, records: [], last: true });
  // A second "last" chunk for a partition already reported changes nothing.
  actor.send({ type: 'RESULT_CHUNK', partition: 1, attempt: 0, seq: 0, records: ['again'], last: true });
  actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 1, seq: 1, records: [3], last: true });
  actor.send({ type: 'JOB_FINISHED', dataset: { id: 'ds1', records: 3 } });
  t.deepEqual(reports, ['result p1/a0: []', 'result p0/a1: [1,2,3]']);
  t.is(actor.getSnapshot().value, 'finished');
  t.deepEqual(actor.getSnapshot().context.dataset, { id: 'ds1', records: 3 });
});

test('spark job: a chunk out of sequence, from another attempt, or for no partition voids nothing but itself and is never reported', (t) => {
  const { actor, reports } = sparkJob(2);
  actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 0, records: [1], last: false });
  actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 2, records: [3], last: true }); // seq 1 lost
  actor.send({ type: 'RESULT_CHUNK', partition: 1, attempt: 0, seq: 1, records: [9], last: true }); // no seq 0
  actor.send({ type: 'RESULT_CHUNK', partition: 7, attempt: 0, seq: 0, records: [9], last: true }); // no such partition
  t.deepEqual(reports, []);
  t.is(actor.getSnapshot().context.outOfSequence, 2);
  actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 1, seq: 0, records: ['whole'], last: true });
  t.deepEqual(reports, ['result p0/a1: ["whole"]']);
});

test('spark job: a failed job is blamed on the partition Spark names, or on one still owed', (t) => {
  const named = sparkJob(3);
  named.actor.send({ type: 'JOB_FAILED', error: 'Task 2 failed 4 times', cancelled: false, partition: 2, failures: 4 });
  t.deepEqual(named.reports, ['gave up p2 after 4: Task 2 failed 4 times']);
  const owed = sparkJob(2);
  owed.actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 0, records: [], last: true });
  owed.actor.send({ type: 'JOB_FAILED', error: 'stage failed', cancelled: false });
  t.deepEqual(owed.reports.at(-1), 'gave up p1 after 4: stage failed');
  t.is(owed.actor.getSnapshot().value, 'failed');
});

test('spark job: STOP cancels a job that still owes results, and not one that is ending by itself', (t) => {
  const busy = sparkJob(2);
  busy.actor.send({ type: 'STOP' });
  t.is(busy.cancels(), 1);
  busy.actor.send({ type: 'JOB_FAILED', error: 'cancelled', cancelled: true });
  t.is(busy.actor.getSnapshot().value, 'cancelled');
  t.false(busy.reports.some((r) => r.startsWith('gave up')));
  const done = sparkJob(1);
  done.actor.send({ type: 'RESULT_CHUNK', partition: 0, attempt: 0, seq: 0, records: ['r'], last: true });
  done.actor.send({ type: 'STOP' });
  t.is(done.cancels(), 0);
  done.actor.send({ type: 'JOB_FINISHED' });
  t.is(done.actor.getSnapshot().value, 'finished');
});
