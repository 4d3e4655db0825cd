/**
 * Every fault of the driver's side has one outcome, against real processes and a real nats-server:
 * a partition lost after start, the run's nats-server dying over and over, stop() during start, spark-submit lost.
 */
import test from 'ava';
import { Cluster, ComponentLostError, PartitionFailedError, SparkApplication } from '../src/index.js';
import { startNatsServer } from '../src/transport/nats-server.js';
import { NATS_RESTARTS } from '../src/driver/nats-restarts.js';
import { connectBus } from '../src/transport/bus.js';
import { EmbeddedLauncher } from '../src/driver/launch/embedded-launcher.js';
import { partitionSource } from '../src/driver/launch/data-source.js';
import type { Launcher } from '../src/driver/launch/launcher.js';
import { isAlive, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { withCluster, testCluster } from './helpers/with-cluster.js';
import { SMALL_SPARK_CONF, testLog, workerPidsOf } from './helpers/spark-harness.js';

test("a partition lost after start fails the cluster at once; stop() rejects naming it and keeps the others' results", async (t) => {
  await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, maxFailures: 1, log: false }, async (cluster) => {
    process.kill(cluster.members[1]!.pid, 'SIGKILL');
    await waitUntil(() => cluster.state === 'failed', 30_000, 'the cluster to fail');
    const err = await t.throwsAsync(cluster.stop(), { instanceOf: PartitionFailedError });
    t.is(err!.partition, 1);
    t.deepEqual([...cluster.result().keys()], [0]);
    t.is(cluster.state, 'failed');
    t.deepEqual(cluster.workerPids, []);
    await t.notThrowsAsync(cluster.stop(), 'the failure is thrown once');
  });
});

test("a run's nats-server that keeps dying is started again 3 times, then the cluster fails with ComponentLostError naming it, leaving no worker behind", async (t) => {
  await withCluster(t, { server: TEST_SERVER, data: [1, 2], partitions: 2, log: false }, async (cluster) => {
    const pids = cluster.members.map((m) => m.pid);
    const killed: number[] = [];
    for (let kill = 1; kill <= NATS_RESTARTS.max + 1; kill++) {
      // Each kill hits the process the driver started again after the last one.
      await waitUntil(
        () => cluster.natsServerPid !== undefined && !killed.includes(cluster.natsServerPid) && isAlive(cluster.natsServerPid),
        30_000,
        `restart ${kill - 1}`,
      );
      killed.push(cluster.natsServerPid!);
      process.kill(cluster.natsServerPid!, 'SIGKILL');
    }
    await waitUntil(() => cluster.state === 'failed', 30_000, 'the cluster to fail');
    t.deepEqual(
      cluster.members.map((m) => m.state),
      ['failed', 'failed'],
    );
    const err = await t.throwsAsync(cluster.stop(), { instanceOf: ComponentLostError });
    t.is(err!.component, 'nats-server');
    t.regex(err!.message, new RegExp(`nats-server \\(pid ${killed.at(-1)}\\) exited with SIGKILL, its exit 4 within 60 s: started again 3 times, given up`));
    for (const pid of [...pids, ...killed]) t.false(isAlive(pid), `process ${pid} left running`);
  });
});

test('stop() right after start() stops everything start() would have launched', async (t) => {
  const cluster = new Cluster({ server: TEST_SERVER, data: [1, 2], partitions: 2, log: false });
  const starting = cluster.start();
  const stopping = cluster.stop();
  await t.throwsAsync(starting, { code: 'SPS_CLUSTER_STATE', message: /stop\(\) was called/ });
  await stopping;
  t.is(cluster.state, 'stopped');
  t.is(cluster.natsServerPid, undefined);
  t.deepEqual(cluster.workerPids, []);
  t.deepEqual(workerPidsOf(cluster.id!), []);
});

test.serial('losing spark-submit fails the cluster at once with ComponentLostError naming it', async (t) => {
  t.timeout(180_000);
  const app = await SparkApplication.start({ master: 'local[2,4]', conf: SMALL_SPARK_CONF, log: testLog });
  t.teardown(() => app.close());
  const cluster = new Cluster({
    server: new URL('./helpers/spark-echo-server.ts', import.meta.url),
    source: { range: { end: 4 } },
    partitions: 2,
    spark: app,
    log: testLog,
    startTimeoutMs: 120_000,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const pids = cluster.members.map((m) => m.pid);
  process.kill(app.pid, 'SIGKILL');
  await waitUntil(() => cluster.state === 'failed', 30_000, 'the cluster to fail');
  const err = await t.throwsAsync(cluster.stop(), { instanceOf: ComponentLostError });
  t.is(err!.component, 'spark-submit');
  // The workers' parents (Spark's Python workers) die with the JVM; the parent-death signal follows.
  await waitUntil(() => pids.every((pid) => !isAlive(pid)), 60_000, 'workers to end').catch(() => {});
  t.deepEqual(pids.filter(isAlive), [], 'workers left running');
});

test.serial('a NATS server you run that restarts within the reconnect window is survived: requests answer again, every result arrives', async (t) => {
  t.timeout(120_000);
  let server = await startNatsServer();
  t.teardown(() => server.stop());
  await withCluster(
    t,
    { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, reconnectWindowMs: 60_000, log: false },
    async (cluster) => {
      const pids = cluster.members.map((m) => m.pid);
      // A bystander connection with the same reconnect pace counts the attempts of the outage, so the
      // gap is measured in reconnect attempts, not wall-clock time: 20 of them outlast the old 2.5 s budget.
      const watcher = await connectBus({ url: server.url, reconnectWindowMs: 60_000 }, 'watcher');
      t.teardown(() => watcher.close());
      let attempts = 0;
      void (async () => {
        for await (const s of watcher.status()) if (s.type === 'reconnecting') attempts++;
      })();
      await server.stop();
      await waitUntil(() => attempts >= 20, 60_000, '20 reconnect attempts');
      // The same port, a new process: everyone reconnects and their subscriptions come back. Each
      // worker reconnects on its own schedule: one answering says nothing of the other.
      server = await startNatsServer({ port: server.port });
      const sums: number[] = [];
      await waitUntil(
        async () => {
          const replies = await cluster.requestAll<number>('sum', undefined, { timeoutMs: 1000 });
          sums.splice(0, sums.length, ...[...replies.values()].flatMap((r) => (r.ok ? [r.value] : [])));
          return sums.length === 2;
        },
        60_000,
        'both partitions to answer again',
      );
      t.deepEqual(sums, [3, 7]);
      t.is(cluster.state, 'running');
      t.deepEqual(
        cluster.members.map((m) => m.pid),
        pids,
        'no partition was restarted',
      );
      await cluster.stop();
      t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
    },
  );
});

test('a second partition lost after start is lost too: both get a `lost` event, and stop() settles on the last result naming both', async (t) => {
  // A stop that waited for its timeout would outlast the test's own.
  t.timeout(120_000);
  const cluster = testCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4, 5, 6], partitions: 3, maxFailures: 1, stopTimeoutMs: 600_000, log: false });
  const lost: number[] = [];
  cluster.on('member', (e) => {
    if (e.kind === 'lost') lost.push(e.partition);
  });
  await cluster.start();
  process.kill(cluster.members[1]!.pid, 'SIGKILL');
  await waitUntil(() => lost.includes(1), 30_000, 'partition 1 lost');
  process.kill(cluster.members[2]!.pid, 'SIGKILL');
  await waitUntil(() => lost.includes(2), 30_000, 'partition 2 lost');
  t.deepEqual(lost, [1, 2]);
  const err = await t.throwsAsync(cluster.stop(), { instanceOf: PartitionFailedError });
  t.is(err!.partition, 1);
  t.deepEqual(err!.partitions, [1, 2]);
  t.regex(err!.message, /Partition 1 failed 1 time\(s\).*killed by SIGKILL.*Also lost: partition 2 \(failed 1 time\(s\): killed by SIGKILL/);
  t.deepEqual([...cluster.result().keys()], [0]);
  t.deepEqual(cluster.workerPids, []);
});

test('start() on a cluster that failed while running ends the failed run first: its nats-server and surviving worker do not outlive it', async (t) => {
  t.timeout(120_000);
  await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, maxFailures: 1, log: false }, async (cluster) => {
    const failedRun = { nats: cluster.natsServerPid!, survivor: cluster.members[0]!.pid };
    process.kill(cluster.members[1]!.pid, 'SIGKILL');
    await waitUntil(() => cluster.state === 'failed', 30_000, 'the cluster to fail');
    await cluster.start();
    t.is(cluster.state, 'running');
    t.false(isAlive(failedRun.nats), 'the failed run’s nats-server is gone');
    t.false(isAlive(failedRun.survivor), 'the failed run’s surviving worker is gone');
    t.not(cluster.natsServerPid, failedRun.nats);
    await cluster.stop();
    t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
  });
});

test('a launcher whose stop() rejects fails the stop with its error, kills the workers, and a later start() runs', async (t) => {
  t.timeout(120_000);
  const inner = new EmbeddedLauncher(await partitionSource([1, 2], 2));
  let breakStop = true;
  const launcher: Launcher = {
    kind: 'embedded (stop breaks once)',
    launch: (plan, events) => inner.launch(plan, events),
    stop: () => {
      if (!breakStop) return inner.stop();
      breakStop = false;
      return Promise.reject(new Error('launcher stop broke'));
    },
    pids: () => inner.pids(),
    killNow: () => inner.killNow(),
  };
  await withCluster(t, { server: TEST_SERVER, partitions: 2, launcher, log: false }, async (cluster) => {
    const pids = cluster.members.map((m) => m.pid);
    await t.throwsAsync(cluster.stop(), { message: 'launcher stop broke' });
    t.is(cluster.state, 'failed');
    await waitUntil(() => pids.every((pid) => !isAlive(pid)), 30_000, 'the workers killed');
    await cluster.start();
    t.is(cluster.state, 'running');
    await cluster.stop();
    t.is(cluster.state, 'stopped');
  });
});
