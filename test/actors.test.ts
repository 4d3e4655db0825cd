import test from 'ava';
import { createActor, fromPromise, waitFor } from 'xstate';
import { partitionServerMachine, type Binding } from '../src/actors/partition-server.js';
import { supervisorMachine } from '../src/actors/supervisor.js';
import type { PartitionState, Registration } from '../src/actors/types.js';

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

const reg = (partition: number, attempt: number): Registration => ({ partition, attempt, host: 'h', port: 1000 + partition, pid: 100 + attempt, endpoints: [] });

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

test('registrations out of range are refused', (t) => {
  const { actor } = supervisor(2);
  actor.send({ type: 'REGISTER', registration: reg(5, 0) });
  t.deepEqual(actor.getSnapshot().context.members, {});
  t.is(actor.getSnapshot().context.stale, 1);
});
