/**
 * Spark launcher on a Spark standalone cluster on loopback: a master and two workers started from
 * the pyspark wheel with spark-class, stopped afterwards (by pid) even when a test fails.
 */
import test, { type ExecutionContext } from 'ava';
import { type Cluster, type ClusterOptions, type SparkApplication } from '../src/index.js';
import { activeJobsSettled, alive, pidsWhere, startApp, startStandalone, testLog, until, type Standalone } from './helpers/spark-harness.js';
import { runSeedDemo } from './helpers/seed-demo.js';
import { ancestorMatching } from './helpers/harness.js';
import { runScript } from './helpers/python-script.js';
import { testCluster } from './helpers/with-cluster.js';

let standalone: Standalone | undefined;
let app: SparkApplication | undefined;

test.before(async (t) => {
  // Three Spark daemons and an application: minutes on a loaded machine.
  t.timeout(300_000);
  standalone = await startStandalone(2, 2);
  // Executors are the workers' JVMs, one per worker; the runner waits for their slots per run.
  app = await startApp(standalone.masterUrl, { slotWaitMs: 60_000 });
});

test.after.always(async () => {
  await app?.close();
  await standalone?.stop();
});

/** Starts four echo partitions over the eight rows 0..7 on the standalone cluster (`extra`: more options, e.g. isolation). */
async function startFour(t: ExecutionContext, extra: Partial<ClusterOptions> = {}): Promise<Cluster> {
  const cluster = testCluster(t, {
    server: new URL('./helpers/spark-echo-server.ts', import.meta.url),
    source: { range: { end: 8 } },
    partitions: 4,
    spark: app,
    log: testLog,
    startTimeoutMs: 120_000,
    ...extra,
  });
  await cluster.start();
  return cluster;
}

/** Every partition of {@link startFour} answers with its two rows; then stop() collects each row once. */
async function rowsThenResults(t: ExecutionContext, cluster: Cluster): Promise<void> {
  const rows = await cluster.requestAll<number[]>('rows');
  t.deepEqual(
    [...rows.values()].map((r) => (r.ok ? r.value : r.error.code)),
    [
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ],
  );
  await cluster.stop();
  t.is(cluster.state, 'stopped');
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1, 2, 3]);
  t.is([...cluster.result().values()].flat().length, 8);
}

test.serial('the seed demo runs on a standalone cluster', async (t) => {
  t.timeout(240_000);
  await runSeedDemo(t, { spark: app, log: testLog });
});

test.serial('four partitions spread over both workers, with a task retry after SIGKILL', async (t) => {
  t.timeout(240_000);
  const cluster = await startFour(t);
  t.deepEqual(
    cluster.members.map((m) => m.partition),
    [0, 1, 2, 3],
  );
  const victim = cluster.members[2]!;
  process.kill(victim.pid, 'SIGKILL');
  t.true(await until(() => cluster.members[2]?.attempt === 1 && cluster.members[2]?.state === 'serving', 120_000), JSON.stringify(cluster.members));
  t.deepEqual(await cluster.request<number[]>(2, 'rows'), [4, 5]);
  const pids = cluster.members.map((m) => m.pid);
  await cluster.stop();
  t.is([...cluster.result().values()].flat().length, 8);
  for (const pid of pids) t.false(alive(pid), `worker ${pid} still running`);
  t.deepEqual(await activeJobsSettled(app!), []);
});

test.serial(
  "isolation 'thread' on the standalone cluster: the executors' tasks run their partitions as threads of the run's partition host on this machine; results once, nothing left",
  async (t) => {
    t.timeout(240_000);
    const cluster = await startFour(t, { isolation: 'thread' });
    for (let p = 0; p < 4; p++) t.deepEqual(await cluster.request<number[]>(p, 'rows'), [2 * p, 2 * p + 1]);
    // One machine: the executors' tasks find the run's one host by its socket.
    const hosts = new Set(cluster.members.map((m) => m.pid));
    t.is(hosts.size, 1, `pids: ${[...hosts].join(', ')}`);
    const [host] = hosts;
    // Started detached: an executor that goes does not take the other executor's threads with it.
    t.is(ancestorMatching(host!, /org\.apache\.spark\.executor/), undefined, 'the host is not a child of an executor');
    await cluster.stop();
    t.is([...cluster.result().values()].flat().length, 8);
    t.true(await until(() => !alive(host!), 60_000), `partition host ${host} still running`);
    t.deepEqual(await activeJobsSettled(app!), []);
  },
);

test.serial('an executor JVM killed: its partitions are retried on another executor, and every result arrives once', async (t) => {
  t.timeout(240_000);
  const cluster = await startFour(t);
  const executorOf = (pid: number): number | undefined => ancestorMatching(pid, /CoarseGrainedExecutorBackend/);
  const before = cluster.members.map((m) => ({ partition: m.partition, pid: m.pid, executor: executorOf(m.pid) }));
  const executor = before[1]!.executor;
  t.truthy(executor, 'partition 1 runs under an executor JVM');
  const lost = before.filter((m) => m.executor === executor).map((m) => m.partition);
  process.kill(executor!, 'SIGKILL');
  t.true(
    await until(() => lost.every((p) => cluster.members[p]!.attempt >= 1 && cluster.members[p]!.state === 'serving'), 180_000),
    JSON.stringify(cluster.members),
  );
  await rowsThenResults(t, cluster);
  for (const m of before) t.false(alive(m.pid), `worker ${m.pid} of partition ${m.partition} still running`);
  t.deepEqual(await activeJobsSettled(app!), []);
});

test.serial(
  "isolation 'thread', an executor JVM killed: its tasks' threads end, Spark retries them as threads of the same host, the other partitions serve on; every result once",
  async (t) => {
    t.timeout(240_000);
    const cluster = await startFour(t, { isolation: 'thread' });
    const host = cluster.members[0]!.pid;
    const executors = pidsWhere((_, argv) => {
      const args = argv();
      return args.includes('org.apache.spark.executor.CoarseGrainedExecutorBackend') && args.includes(app!.info.applicationId);
    });
    // Two workers of two cores: each executor runs two of the four tasks.
    t.is(executors.length, 2, `executors: ${executors.join(', ')}`);
    process.kill(executors[0]!, 'SIGKILL');
    t.true(await until(() => cluster.members.filter((m) => m.attempt >= 1 && m.state === 'serving').length === 2, 180_000), JSON.stringify(cluster.members));
    t.is(cluster.members.filter((m) => m.attempt === 0).length, 2, 'the partitions of the other executor were not retried');
    t.true(alive(host), 'the partition host outlived the executor');
    t.true(
      cluster.members.every((m) => m.pid === host),
      `pids: ${cluster.members.map((m) => m.pid).join(', ')}`,
    );
    await rowsThenResults(t, cluster);
    t.true(await until(() => !alive(host), 60_000), `partition host ${host} still running`);
    t.deepEqual(await activeJobsSettled(app!), []);
  },
);

// Last: the TypeScript application holds every core of the standalone cluster, so it closes first
// and the Python program's own application gets the executors.
test.serial("the seed's demo from PySpark on the standalone cluster: the Python package's own session, its executors run the servers", async (t) => {
  t.timeout(240_000);
  await app?.close();
  app = undefined;
  // One executor per worker, both joined before the demo's first run (see wait_for_executors).
  const f = await runScript(t, 'seed_demo.py', { SPS_TEST_MASTER: standalone!.masterUrl, SPS_TEST_EXECUTORS: '2', SPARK_LOCAL_IP: '127.0.0.1' });
  const half = (from: number) => Array.from({ length: 500 }, (_, i) => from + i);
  t.deepEqual(f.all, { 0: half(0), 1: half(500) });
  t.deepEqual(f.http0, half(0));
  const results = [
    { partition: 0, count: 500, sum: 124750 },
    { partition: 1, count: 500, sum: 374750 },
  ];
  t.deepEqual(f.results, { 0: [results[0]], 1: [results[1]] });
  t.deepEqual(f.result_df, results);
  t.deepEqual(f.again_results, { 0: [results[0]], 1: [results[1]] });
});
