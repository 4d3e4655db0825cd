/**
 * The library across hosts: a Spark standalone master in the root network namespace (with the
 * driver) and one Spark worker in each of two network namespaces with their own addresses, as a
 * user runs it: `master: 'spark://…'` and `spark.driver.host` set, no network option of ours.
 * Skipped, saying why, where namespaces cannot be made (not root, no `ip`); everything is torn down
 * and checked gone, also when a test fails.
 */
import test from 'ava';
import { Cluster, SparkApplication } from '../src/index.js';
import { DemoCluster } from '../examples/demo-cluster.js';
import { canMakeNamespaces, createHosts, leftovers, startStandaloneAcross, type Hosts, type StandaloneAcross } from './helpers/netns.js';
import { SMALL_SPARK_CONF, activeJobsSettled, alive, testLog, until, workerPidsOf } from './helpers/spark-harness.js';
import { runSeedDemo } from './helpers/seed-demo.js';
import { runScript } from './helpers/python-script.js';

const probe = await canMakeNamespaces();
let hosts: Hosts | undefined;
let standalone: StandaloneAcross | undefined;
/** Stops the standalone daemons, known before they start (the before hook may time out mid-start). */
let stopDaemons: (() => Promise<void>) | undefined;
let app: SparkApplication | undefined;

async function teardown(): Promise<void> {
  try {
    await app?.close();
    await (standalone?.stop ?? stopDaemons)?.();
  } finally {
    await hosts?.remove();
  }
}

if (!probe.ok) {
  test.skip(`across two hosts (skipped: ${probe.why})`, () => {});
} else {
  test.before(async (t) => {
    // Namespaces, three Spark daemons and an application: minutes on a loaded machine.
    t.timeout(360_000);
    hosts = await createHosts(2);
    standalone = await startStandaloneAcross(hosts, { coresPerWorker: 2, started: (stop) => (stopDaemons = stop) });
    const driver = hosts.driverAddress;
    app = await SparkApplication.start({
      master: standalone.masterUrl,
      // What any Spark user sets for a driver that executors on other hosts must reach.
      conf: { ...SMALL_SPARK_CONF, 'spark.driver.host': driver, 'spark.driver.bindAddress': driver, 'spark.cores.max': '4' },
      log: testLog,
      slotWaitMs: 90_000,
    });
  });

  test.after.always(async (t) => {
    await teardown();
    if (hosts) t.deepEqual(await leftovers(hosts.runId), [], 'namespaces or links left behind');
  });

  test.serial('the seed demo runs with its partitions on other hosts', async (t) => {
    t.timeout(240_000);
    await runSeedDemo(t, { spark: app, log: testLog });
  });

  test.serial('four HTTP partitions over TLS on two hosts: queried over HTTP and NATS, each at its own host, and a SIGKILL retried across hosts', async (t) => {
    t.timeout(300_000);
    const addresses = hosts!.hosts.map((h) => h.address);
    const cluster = new DemoCluster({
      server: new URL('../examples/demo-server.ts', import.meta.url),
      source: { range: { end: 400 } },
      partitions: 4,
      spark: app,
      tls: true,
      log: testLog,
      startTimeoutMs: 180_000,
    });
    t.teardown(() => cluster.stop().catch(() => {}));
    await cluster.start();
    // The bus listens at the driver's address as Spark uses it, and speaks TLS.
    t.regex(cluster.natsUrl!, new RegExp(`^tls://${hosts!.driverAddress.replace(/\./g, '\\.')}:\\d+$`));
    const members = cluster.members;
    t.deepEqual([...new Set(members.map((m) => m.host))].sort(), [...addresses].sort(), JSON.stringify(members));
    for (const m of members) {
      const expected = Array.from({ length: 100 }, (_, i) => m.partition * 100 + i);
      t.deepEqual(await cluster.getPartitionList(m.partition), expected, `HTTP at ${m.host}:${m.port}`);
      t.deepEqual(await cluster.request<number[]>(m.partition, 'get_list'), expected, 'NATS');
    }

    // SIGKILL one worker (the test's own doing; the driver signals no process on Spark).
    const victim = members[1]!;
    t.true(workerPidsOf(cluster.id!).includes(victim.pid));
    process.kill(victim.pid, 'SIGKILL');
    t.true(
      await until(() => cluster.members[1]!.attempt > victim.attempt && cluster.members[1]!.state === 'serving', 180_000),
      JSON.stringify(cluster.members),
    );
    const fresh = cluster.members[1]!;
    t.true(addresses.includes(fresh.host), `attempt ${fresh.attempt} registered ${fresh.host}`);
    t.deepEqual(
      await cluster.getPartitionList(1),
      Array.from({ length: 100 }, (_, i) => 100 + i),
    );

    const pids = cluster.members.map((m) => m.pid);
    await cluster.stop();
    t.deepEqual([...cluster.result().keys()].sort(), [0, 1, 2, 3]);
    t.true(await until(() => pids.every((pid) => !alive(pid)), 60_000), 'workers left running');
    t.deepEqual(await activeJobsSettled(app!), []);
  });

  test.serial("collectives between hosts: small and 4 MB allReduce over the partitions' direct sockets across namespaces, and over NATS", async (t) => {
    t.timeout(300_000);
    const cluster = new Cluster({
      server: new URL('./fixtures/collective-server.ts', import.meta.url),
      source: { range: { end: 40 } },
      partitions: 4,
      spark: app,
      log: testLog,
      startTimeoutMs: 180_000,
    });
    t.teardown(() => cluster.stop().catch(() => {}));
    await cluster.start();
    const hostsUsed = new Set(cluster.members.map((m) => m.host));
    t.deepEqual([...hostsUsed].sort(), hosts!.hosts.map((h) => h.address).sort(), JSON.stringify(cluster.members));
    type Outcome = { ok: boolean; value?: unknown; code?: string; message?: string };
    const all = async (endpoint: string, payload: unknown): Promise<unknown[]> => {
      const replies = await cluster.requestAll<Outcome>(endpoint, payload, { timeoutMs: 120_000 });
      return [...replies].map(([p, r]) => {
        if (!r.ok) throw new Error(`partition ${p}: ${r.error.message}`);
        if (r.value.ok === false) throw new Error(`partition ${p}: [${r.value.code}] ${r.value.message}`);
        return 'ok' in r.value ? r.value.value : r.value;
      });
    };
    // A small value goes straight to the peers' sockets in a group of 4 (the default 'auto').
    t.deepEqual(await all('allReduce', 5), [20, 20, 20, 20]);
    const stats = (await all('stats', null)) as { directBytesSent: number; refusedSockets: number }[];
    t.true(
      stats.every((x) => x.directBytesSent > 0 && x.refusedSockets === 0),
      JSON.stringify(stats),
    );
    for (const transport of ['direct', 'nats'] as const) {
      const huge = (await all('huge', { mb: 4, transport })) as { length: number; wrong: number; direct: boolean }[];
      t.deepEqual(
        huge,
        Array.from({ length: 4 }, () => ({ length: 1024 * 1024, wrong: 0, direct: transport === 'direct' })),
        transport,
      );
    }
    await cluster.stop();
    t.deepEqual(await activeJobsSettled(app!), []);
  });

  // Last: the TypeScript application holds the cluster's cores, so it closes first and the Python
  // program's own application gets the executors on the other hosts.
  test.serial("the seed's demo from PySpark with its partitions on other hosts: the Python process queries each host", async (t) => {
    t.timeout(300_000);
    await app?.close();
    app = undefined;
    const driver = hosts!.driverAddress;
    const f = (await runScript(t, 'seed_demo.py', {
      SPS_TEST_MASTER: standalone!.masterUrl,
      // One executor per host, both joined before the demo's first run (see wait_for_executors).
      SPS_TEST_EXECUTORS: '2',
      SPS_TEST_DRIVER_HOST: driver,
      SPARK_LOCAL_IP: driver,
    })) as { hosts: Record<string, [string, boolean]>; all: unknown; http0: number[]; results: unknown };
    const addresses = hosts!.hosts.map((h) => h.address);
    for (const [p, [host, http]] of Object.entries(f.hosts)) {
      t.true(addresses.includes(host), `partition ${p} serves at ${host}, a worker host (${addresses.join(', ')})`);
      t.true(http, `partition ${p} has an HTTP port`);
    }
    const half = (from: number) => Array.from({ length: 500 }, (_, i) => from + i);
    t.deepEqual(f.all, { 0: half(0), 1: half(500) });
    t.deepEqual(f.http0, half(0));
    t.deepEqual(f.results, {
      0: [{ partition: 0, count: 500, sum: 124750 }],
      1: [{ partition: 1, count: 500, sum: 374750 }],
    });
  });
}
