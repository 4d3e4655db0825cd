import test, { type ExecutionContext } from 'ava';
import { Cluster, type Isolation } from '../src/index.js';
import { isAlive, portOpen, waitUntil } from './helpers/harness.js';

const SERVER = new URL('./fixtures/isolation-server.ts', import.meta.url);

interface WhoAmI {
  partition: number;
  attempt: number;
  pid: number;
  threadId: number;
}

function keptLog(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

/** Ends a process this test started (a worker, or a partition host), if it is still there. */
function forceEnd(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A cluster of `partitions` over 0..99, its processes ended whatever happens. */
function cluster(t: ExecutionContext, isolation: Isolation, opts: Partial<ConstructorParameters<typeof Cluster>[0]> = {}): Cluster {
  const c = new Cluster({ server: SERVER, data: { range: { end: 100 } }, partitions: 3, isolation, log: false, ...opts });
  t.teardown(async () => {
    const pids = c.members.map((m) => m.pid);
    await c.stop().catch(() => {});
    for (const pid of pids) forceEnd(pid);
  });
  return c;
}

/** Which attempt returned each result record, by partition. */
const resultAttempts = (c: Cluster): (number[] | undefined)[] =>
  [0, 1, 2].map((p) =>
    c
      .result()
      .get(p)
      ?.map((r) => (r as { attempt: number }).attempt),
  );

/** The sum of partition p's rows when 0..99 is split in 4. */
const expectedSum = (p: number): number => Array.from({ length: 25 }, (_, i) => p * 25 + i).reduce((a, b) => a + b, 0);

for (const isolation of ['process', 'thread'] as const) {
  test.serial(`${isolation}: starts, serves HTTP and NATS requests and collectives, returns each result exactly once, stops`, async (t) => {
    const c = cluster(t, isolation, { partitions: 4 });
    await c.start();
    const members = c.members;
    t.deepEqual(
      members.map((m) => [m.partition, m.attempt, m.state]),
      [0, 1, 2, 3].map((p) => [p, 0, 'serving']),
    );
    const who = await Promise.all([0, 1, 2, 3].map((p) => c.request<WhoAmI>(p, 'whoami')));
    const pids = new Set(who.map((w) => w.pid));
    if (isolation === 'thread') {
      // One host process; each partition its own thread.
      t.is(pids.size, 1);
      t.is(new Set(who.map((w) => w.threadId)).size, 4);
      t.true(who.every((w) => w.threadId > 0));
    } else {
      t.is(pids.size, 4);
      t.true(who.every((w) => w.threadId === 0));
    }
    for (const m of members) {
      t.is(m.pid, who[m.partition]!.pid);
      const res = await fetch(`http://${m.host}:${m.port}/app/sum`);
      t.deepEqual(await res.json(), { partition: m.partition, sum: expectedSum(m.partition) });
      t.is(await c.request(m.partition, 'sum'), expectedSum(m.partition));
    }
    const total = (99 * 100) / 2;
    t.deepEqual(await Promise.all([0, 1, 2, 3].map((p) => c.request(p, 'total'))), [total, total, total, total]);
    const ports = members.map((m) => m.port!);
    await c.stop();
    t.deepEqual(
      [...c.result().entries()].sort(([a], [b]) => a - b),
      [0, 1, 2, 3].map((p) => [p, [{ partition: p, attempt: 0, count: 25 }]]),
    );
    for (const pid of pids) t.false(isAlive(pid), `process ${pid} is gone after stop`);
    for (const port of ports) t.false(await portOpen(port));
  });
}

/**
 * Partition 1 faults on attempt 0 with its HTTP server, NATS connection and direct socket open:
 * that attempt fails, attempt 1 serves, the other partitions keep serving from the same host.
 */
async function faultFailsOneAttempt(
  t: ExecutionContext,
  fault: string,
  why: RegExp,
  opts: Partial<ConstructorParameters<typeof Cluster>[0]> = {},
): Promise<void> {
  const { lines, log } = keptLog();
  const c = cluster(t, 'thread', { log, ...opts });
  await c.start();
  const before = await Promise.all([0, 1, 2].map((p) => c.request<WhoAmI>(p, 'whoami')));
  const sum1 = await c.request(1, 'sum');
  const host = before[0]!.pid;
  t.teardown(() => forceEnd(host));
  t.is(await c.request(1, fault), 'done');
  await waitUntil(() => c.members[1]?.attempt === 1 && c.members[1]?.state === 'serving', 120_000, 'attempt 1 of partition 1 serving');
  const failed = lines.find((l) => /p1\/a0\] attempt failed: /.test(l));
  t.regex(failed ?? lines.join('\n'), why);
  // The host lived on: the other partitions answer from it, as attempt 0, in the same threads.
  t.true(isAlive(host));
  for (const p of [0, 2]) t.deepEqual(await c.request<WhoAmI>(p, 'whoami'), before[p]);
  const fresh = await c.request<WhoAmI>(1, 'whoami');
  t.is(fresh.attempt, 1);
  t.is(fresh.pid, host, 'the retry runs in the same host');
  t.not(fresh.threadId, before[1]!.threadId);
  t.is(await c.request(1, 'sum'), sum1);
  await c.stop();
  t.deepEqual(resultAttempts(c), [[0], [1], [0]]);
  t.false(isAlive(host));
}

test.serial('thread: a thread that throws an uncaught error fails its attempt only; the retry serves', async (t) => {
  await faultFailsOneAttempt(t, 'throw', /the partition thread died: Error: thrown on purpose outside any handler/);
});

for (const [fault, why] of [
  ['throw', /exited with code 1: \[SPS_WORKER_ERROR\] uncaught exception: thrown on purpose outside any handler/],
  ['reject', /exited with code 1: \[E_FIXTURE_REJECT\] unhandled rejection: rejected on purpose, never handled/],
] as const) {
  test.serial(
    `process: a worker's ${fault === 'throw' ? 'uncaught error' : 'unhandled rejection'} fails its attempt with a reason that names the error; the retry serves`,
    async (t) => {
      const { lines, log } = keptLog();
      const c = cluster(t, 'process', { log });
      await c.start();
      t.is(await c.request(1, fault), 'done');
      await waitUntil(() => c.members[1]?.attempt === 1 && c.members[1]?.state === 'serving', 120_000, 'attempt 1 of partition 1 serving');
      const failed = lines.find((l) => /p1\/a0\] attempt failed: /.test(l));
      t.regex(failed ?? lines.join('\n'), why);
      t.like(await c.request<WhoAmI>(1, 'whoami'), { partition: 1, attempt: 1 });
      await c.stop();
      t.deepEqual(resultAttempts(c), [[0], [1], [0]]);
    },
  );
}

test.serial('thread: a thread that calls process.exit ends its attempt only; the retry serves', async (t) => {
  await faultFailsOneAttempt(t, 'exit', /exited with code 7/);
});

test.serial('thread: a hung thread is found by the liveness watch and terminated; the retry serves', async (t) => {
  await faultFailsOneAttempt(t, 'hang', /hung: no liveness tick for 2000 ms/, { hangTimeoutMs: 2000, heartbeatMs: 200 });
});

test.serial('thread: a thread beyond its heap limit (threadHeapMb) fails alone; the retry serves', async (t) => {
  await faultFailsOneAttempt(t, 'oom', /the partition thread died: .*(memory|ERR_WORKER_OUT_OF_MEMORY)/i, { threadHeapMb: 64 });
});

test.serial('thread: SIGKILL of the partition host fails every partition it ran; each is retried in a new host', async (t) => {
  const { lines, log } = keptLog();
  const c = cluster(t, 'thread', { log });
  await c.start();
  const host = c.members[0]!.pid;
  t.teardown(() => forceEnd(host));
  t.true(c.members.every((m) => m.pid === host));
  process.kill(host, 'SIGKILL');
  await waitUntil(
    () => c.members.length === 3 && c.members.every((m) => m.attempt === 1 && m.state === 'serving'),
    120_000,
    'every partition serving as attempt 1',
  );
  const next = c.members[0]!.pid;
  t.not(next, host);
  t.true(c.members.every((m) => m.pid === next));
  for (const p of [0, 1, 2])
    t.true(
      lines.some((l) => new RegExp(`p${p}/a0\\] attempt failed: killed by SIGKILL: its partition host ${host} was killed by SIGKILL`).test(l)),
      lines.join('\n'),
    );
  await c.stop();
  t.deepEqual(resultAttempts(c), [[1], [1], [1]]);
  t.false(isAlive(next));
});

test('options: isolation is checked, and threads refuse uWebSockets.js', (t) => {
  t.throws(() => new Cluster({ server: SERVER, data: [1], isolation: 'fiber' as never }), { message: /isolation.*must be "process", "thread", got "fiber"/ });
  t.throws(() => new Cluster({ server: SERVER, data: [1], isolation: 'thread', http: 'uws' }), {
    message: /http.*"uws" cannot serve partitions run as threads/,
  });
  t.throws(() => new Cluster({ server: SERVER, data: [1], threadHeapMb: 64 }), { message: /threadHeapMb.*isolation "thread" only/ });
  // Spark runs threads too (one partition host per run and executor); a launcher of your own does not.
  t.notThrows(() => new Cluster({ server: SERVER, data: [1], isolation: 'thread', master: 'local[2]' }));
  const launcher = { launch: async () => {}, stop: async () => {} } as never;
  t.throws(() => new Cluster({ server: SERVER, data: [1], isolation: 'thread', launcher }), { message: /isolation.*embedded and Spark launchers only/ });
  t.throws(() => new Cluster({ server: SERVER, data: [1], isolation: 'thread', master: 'local[2]', http: 'uws' }), {
    message: /http.*"uws" cannot serve partitions run as threads/,
  });
});
