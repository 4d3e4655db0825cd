/**
 * Option `isolation: 'thread'` on a real local-mode Spark (local[4,4]): the tasks of a run on an
 * executor run their attempts as threads of one partition host process, which they reach on a Unix
 * socket in a private directory; each task's channels are FIFOs of its own private directory.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, ClusterOptions, MemberEvent, SparkApplication } from '../src/index.js';
import { activeJobsSettled, alive, pidsWhere, startApp, testLog, until } from './helpers/spark-harness.js';
import { testCluster } from './helpers/with-cluster.js';

const SERVER = new URL('./helpers/spark-thread-server.ts', import.meta.url);
/** Where the runner keeps its partition hosts' sockets and its tasks' FIFO directories. */
const HOST_DIR = join(tmpdir(), `sps-host-${process.getuid!()}`);

let app: SparkApplication | undefined;

/** The application's last output lines (its tasks' output among them). */
const appLines: string[] = [];

test.before(async () => {
  app = await startApp('local[4,4]', {
    log: (line) => {
      appLines.push(line);
      if (appLines.length > 5000) appLines.splice(0, 1000);
    },
  });
});

test.after.always(async () => {
  await app?.close();
});

interface WhoAmI {
  partition: number;
  attempt: number;
  pid: number;
  count: number;
  heapLimitMb: number;
}

/** What the run left in the host directory: its socket, and any task's FIFO directory. */
function leftovers(clusterId: string): string[] {
  if (!existsSync(HOST_DIR)) return [];
  // Only this run's: tests of other files may run Spark threads meanwhile.
  return readdirSync(HOST_DIR).filter((name) => name.startsWith(clusterId) || name.startsWith(`sps-task-${clusterId}-`));
}

/** Pids of this machine's partition hosts of run `clusterId`, found by the socket in their environment. */
function hostPidsOf(clusterId: string): number[] {
  return pidsWhere((env) => env.includes(`SPS_HOST_SOCKET=${join(HOST_DIR, `${clusterId}.sock`)}`));
}

/** A run of `extra` on the application with isolation 'thread', stopped in the test's teardown. */
function threadCluster(t: ExecutionContext, extra: Partial<ClusterOptions>): Cluster {
  return testCluster(t, { server: SERVER, partitions: 4, spark: app, isolation: 'thread', log: testLog, startTimeoutMs: 120_000, ...extra });
}

test.serial('every partition serves as a thread of one partition host; results arrive once; stop() leaves no host, socket or FIFO', async (t) => {
  t.timeout(180_000);
  const cluster = threadCluster(t, { source: { range: { end: 20 } } });
  await cluster.start();
  const who = await Promise.all([0, 1, 2, 3].map((p) => cluster.request<WhoAmI>(p, 'whoami')));
  t.deepEqual(
    who.map((w) => [w.partition, w.attempt, w.count]),
    [0, 1, 2, 3].map((p) => [p, 0, 5]),
  );
  const host = who[0]!.pid;
  t.true(
    who.every((w) => w.pid === host),
    `pids: ${who.map((w) => w.pid)}`,
  );
  t.not(host, process.pid);
  t.true(cluster.members.every((m) => m.pid === host));
  t.true(existsSync(join(HOST_DIR, `${cluster.id}.sock`)), 'the host listens on its run socket');
  await cluster.stop();
  const result = cluster.result();
  for (let p = 0; p < 4; p++) t.is(result.get(p)?.length, 5, `partition ${p}: ${JSON.stringify(result.get(p))}`);
  const rows = [...result.values()].flat().map((r) => Number(JSON.parse((r as { row: string }).row)));
  t.deepEqual(
    rows.sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
  );
  // The host leaves once it has had no task for its idle grace (10 s).
  t.true(await until(() => !alive(host), 60_000), `partition host ${host} still running`);
  t.deepEqual(leftovers(cluster.id!), []);
});

test.serial('a partition that fails once: Spark retries its task, which serves as a thread again; results arrive once', async (t) => {
  t.timeout(180_000);
  const cluster = threadCluster(t, { source: { range: { end: 20 } }, config: { failOnce: 2 } });
  await cluster.start();
  const who = await Promise.all([0, 1, 2, 3].map((p) => cluster.request<WhoAmI>(p, 'whoami')));
  t.deepEqual(
    who.map((w) => [w.partition, w.attempt]),
    [
      [0, 0],
      [1, 0],
      [2, 1],
      [3, 0],
    ],
  );
  // Served from the run's host (the same one, or a new one if it had left meanwhile): one per run.
  const hosts = new Set(who.map((w) => w.pid));
  t.is(hosts.size, 1, `pids: ${who.map((w) => w.pid)}`);
  await cluster.stop();
  const result = cluster.result();
  t.deepEqual(
    result.get(2)?.map((r) => (r as { attempt: number }).attempt),
    [1, 1, 1, 1, 1],
  );
  t.is([...result.values()].flat().length, 20);
  t.true(await until(() => [...hosts].every((pid) => !alive(pid)), 60_000), 'partition host still running');
  t.deepEqual(leftovers(cluster.id!), []);
});

test.serial(
  'a partition host that dies: each of its tasks fails naming the host and its last output line, Spark retries them on a new host, results arrive once',
  async (t) => {
    t.timeout(240_000);
    const work = mkdtempSync(join(tmpdir(), 'sps-host-crash-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const trigger = join(work, 'crash');
    const preload = new URL('./fixtures/host-crash-preload.mjs', import.meta.url).href;
    const cluster = threadCluster(t, { source: { range: { end: 20 } }, env: { NODE_OPTIONS: `--import=${preload}`, TEST_HOST_CRASH_FILE: trigger } });
    const replaced: MemberEvent[] = [];
    cluster.on('member', (e: MemberEvent) => void (e.kind === 'replaced' && replaced.push(e)));
    await cluster.start();
    const host = (await cluster.request<WhoAmI>(0, 'whoami')).pid;
    // The host's own line goes to its log, the only place its output goes.
    writeFileSync(trigger, '');
    t.true(
      await until(() => cluster.members.length === 4 && cluster.members.every((m) => m.attempt >= 1 && m.state === 'serving'), 180_000),
      JSON.stringify(cluster.members),
    );
    const who = await Promise.all([0, 1, 2, 3].map((p) => cluster.request<WhoAmI>(p, 'whoami')));
    t.true(
      who.every((w) => w.pid !== host && w.pid === who[0]!.pid),
      `pids: ${who.map((w) => w.pid)}`,
    );
    t.deepEqual(replaced.map((e) => e.partition).sort(), [0, 1, 2, 3]);
    // Each task says why its thread ended, with the host's last line, on its output and in the
    // reason its task failed with (Spark's log of the failure).
    const said = `the partition host ${host} went away before its thread ended; its last output: host ${host}: going down on purpose`;
    const saying = appLines.filter((l) => l.includes(said));
    t.true(saying.length >= 4, appLines.filter((l) => l.includes('went away')).join('\n') || 'no line says the host went away');
    t.true(
      saying.some((l) => /RuntimeError: partition \d attempt 0: worker exited with code 1: the partition host/.test(l)),
      saying.join('\n'),
    );
    await cluster.stop();
    const result = cluster.result();
    t.is([...result.values()].flat().length, 20);
    t.true(
      [...result.values()].flat().every((r) => (r as { attempt: number }).attempt >= 1),
      'every result from the retries',
    );
    t.true(await until(() => !alive(who[0]!.pid), 60_000), 'partition host still running');
    t.deepEqual(leftovers(cluster.id!), [], 'the host that left idle took the log with it');
  },
);

test.serial('a hung thread: the task kills it on the socket, Spark retries the task, and the retry serves from the same host', async (t) => {
  t.timeout(180_000);
  const cluster = threadCluster(t, {
    server: new URL('./fixtures/hang-server.ts', import.meta.url),
    source: { range: { end: 8 } },
    hangTimeoutMs: 2000,
    heartbeatMs: 200,
  });
  await cluster.start();
  const host = (await cluster.request<WhoAmI>(1, 'whoami')).pid;
  // Blocks partition 1's thread for good: its ticks stop, the task's liveness watch ends it.
  void cluster.request(1, 'spin', undefined, { timeoutMs: 1000 }).catch(() => {});
  t.true(
    await until(() => cluster.members.some((m) => m.partition === 1 && m.attempt === 1 && m.state === 'serving'), 120_000),
    JSON.stringify(cluster.members),
  );
  t.like(await cluster.request<{ spun: boolean; attempt: number }>(1, 'spin'), { spun: false, attempt: 1 });
  t.is((await cluster.request<WhoAmI>(1, 'whoami')).pid, host, "the retry runs in the run's host");
  await cluster.stop();
  t.is([...cluster.result().values()].flat().length, 4);
  t.true(await until(() => !alive(host), 60_000), `partition host ${host} still running`);
  t.deepEqual(leftovers(cluster.id!), []);
});

test.serial('a start that times out cancels the Spark job: the tasks go, their threads end, and the host leaves', async (t) => {
  t.timeout(120_000);
  const cluster = threadCluster(t, {
    server: new URL('./helpers/spark-hang-server.ts', import.meta.url),
    source: { range: { end: 8 } },
    startTimeoutMs: 20_000,
  });
  let hosts: number[] = [];
  let settled = false;
  const starting = cluster.start().finally(() => (settled = true));
  t.true(await until(() => settled || (cluster.id !== undefined && (hosts = hostPidsOf(cluster.id)).length > 0), 60_000), 'no partition host started');
  await t.throwsAsync(starting, { code: 'SPS_START_TIMEOUT' });
  t.is(hosts.length, 1);
  // The host leaves only once it has no thread left, and no task for its idle grace.
  t.true(await until(() => hosts.every((pid) => !alive(pid)), 60_000), `partition host still running: ${hosts.filter(alive)}`);
  t.deepEqual(await activeJobsSettled(app!), []);
  t.deepEqual(leftovers(cluster.id!), []);
});

test.serial('rows as JSON frames (a parallelized array) reach the threads too; threadHeapMb bounds each thread’s heap', async (t) => {
  t.timeout(120_000);
  const rows = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  const cluster = threadCluster(t, { source: { rows }, threadHeapMb: 96 });
  await cluster.start();
  const who = await Promise.all([0, 1, 2, 3].map((p) => cluster.request<WhoAmI>(p, 'whoami')));
  t.is(
    who.reduce((n, w) => n + w.count, 0),
    8,
  );
  t.is(new Set(who.map((w) => w.pid)).size, 1);
  // The old generation's limit, plus the young generation's room (each thread's is a few MB).
  for (const w of who) t.true(w.heapLimitMb >= 96 && w.heapLimitMb < 96 + 64, `partition ${w.partition}: heap limit ${w.heapLimitMb} MB`);
  await cluster.stop();
  const got = [...cluster.result().values()].flat().map((r) => JSON.parse((r as { row: string }).row) as string);
  t.deepEqual(got.sort(), rows);
  t.true(await until(() => !alive(who[0]!.pid), 60_000), `partition host ${who[0]!.pid} still running`);
  t.deepEqual(leftovers(cluster.id!), []);
});

test.serial('barrier mode: the four threads compute together, their collective data on the direct sockets between threads of one host', async (t) => {
  t.timeout(180_000);
  const cluster = threadCluster(t, { server: new URL('./fixtures/collective-server.ts', import.meta.url), source: { range: { end: 8 } }, barrier: true });
  await cluster.start();
  const replies = await cluster.requestAll<{ ok: boolean; value?: { sum: number; max: number; allGather: string[]; stats: { directBytesSent: number } } }>(
    'suite',
    false,
    { timeoutMs: 120_000 },
  );
  for (const [p, r] of replies) {
    const out = r.ok ? r.value : undefined;
    t.true(out?.ok, `partition ${p}: ${JSON.stringify(r.ok ? r.value : r.error.message)}`);
    t.like(out?.value, { sum: 10, max: 4, allGather: ['v0', 'v1', 'v2', 'v3'] }, `partition ${p}`);
    t.true((out?.value?.stats.directBytesSent ?? 0) > 0, `partition ${p} sent its collective data over a direct socket`);
  }
  const hosts = new Set(cluster.members.map((m) => m.pid));
  t.is(hosts.size, 1, `pids: ${[...hosts].join(', ')}`);
  await cluster.stop();
  t.is([...cluster.result().keys()].length, 4);
  t.true(await until(() => [...hosts].every((pid) => !alive(pid)), 60_000), 'partition host still running');
  t.deepEqual(leftovers(cluster.id!), []);
});
