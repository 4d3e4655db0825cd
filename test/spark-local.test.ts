/**
 * Spark launcher on a real local-mode Spark (local[2,4]): one shared application for the file,
 * plus one test that lets a cluster start (and end) its own application from `master`.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { errors as natsErrors } from '@nats-io/nats-core';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Cluster,
  DependencyMissingError,
  SparkError,
  SparkLauncher,
  SparkSlotsError,
  type BusAccess,
  type SparkApplication,
  type SparkEvent,
  type SparkSource,
} from '../src/index.js';
import { encode } from '../src/protocol/codec.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { recordEvents } from './helpers/event-log.js';
import { SMALL_SPARK_CONF, activeJobsSettled, alive, sparkSubmitChildren, startApp, testLog, until, workerPidsOf } from './helpers/spark-harness.js';
import { runSeedDemo } from './helpers/seed-demo.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { resolveOptions } from '../src/driver/options.js';
import { testCluster } from './helpers/with-cluster.js';

const DEMO_SERVER = new URL('../examples/demo-server.ts', import.meta.url);
const ECHO_SERVER = new URL('./helpers/spark-echo-server.ts', import.meta.url);

let app: SparkApplication | undefined;
const dir = mkdtempSync(join(tmpdir(), 'sps-spark-test-'));

test.before(async () => {
  app = await startApp('local[2,4]');
});

test.after.always(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface WhoAmI {
  partition: number;
  attempt: number;
  partitions: number;
  count: number;
  stage: string;
  taskAttemptId: string;
  pid: number;
}

function echoCluster(extra: Record<string, unknown>): Cluster {
  return new Cluster({ server: ECHO_SERVER, partitions: 2, spark: app, log: testLog, startTimeoutMs: 120_000, ...extra });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test.serial("the suite's Spark JVMs start from the class archive setup wrote (npm test runs it with --jvm-archive): the application's JVM maps it", (t) => {
  const archive = fileURLToPath(new URL('../.cache/jvm/spark-classes.jsa', import.meta.url));
  t.true(existsSync(archive), 'no class archive: bash scripts/setup.sh --jvm-archive writes it (npm test runs that)');
  // A JVM maps an archive it accepted; one made from other classes (another JVM's) it ignores.
  const maps = readFileSync(`/proc/${app!.pid}/maps`, 'utf8');
  t.true(maps.includes(archive), `the JVM ${app!.pid} did not map ${archive}`);
});

test.serial('the seed demo runs on local[2,4] with an application of its own (option master)', async (t) => {
  t.timeout(240_000);
  await runSeedDemo(t, { master: 'local[2,4]', sparkConf: SMALL_SPARK_CONF, log: testLog });
});

test.serial('an empty partition still gets a server that knows its index', async (t) => {
  t.timeout(120_000);
  const cluster = echoCluster({ source: { rows: ['only'] } });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const who = await cluster.requestAll<WhoAmI>('whoami');
  const p0 = who.get(0);
  const p1 = who.get(1);
  t.true(p0?.ok && p1?.ok);
  if (!p0?.ok || !p1?.ok) return;
  t.like(p0.value, { partition: 0, attempt: 0, partitions: 2, count: 0 });
  t.like(p1.value, { partition: 1, attempt: 0, partitions: 2, count: 1 });
  t.truthy(p0.value.stage);
  t.truthy(p0.value.taskAttemptId);
  await cluster.stop();
  t.deepEqual(cluster.result().get(0), []);
  t.deepEqual(cluster.result().get(1), [{ partition: 1, i: 0, row: '"only"' }]);
});

test.serial('on Spark, a failure a retry cannot fix (no HTTP server loads) fails the partition at once: no task is retried, the run stops', async (t) => {
  t.timeout(120_000);
  const cluster = new Cluster({
    server: new URL('./fixtures/failing-server.ts', import.meta.url),
    config: { failIn: 'http' },
    partitions: 2,
    source: { rows: [1, 2] },
    spark: app,
    log: testLog,
    startTimeoutMs: 120_000,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  const failedTasks: number[] = [];
  cluster.on('spark', (e: SparkEvent) => {
    if (e.type === 'stage' && e.stage) failedTasks.push(e.stage.failed);
  });
  const err = await t.throwsAsync(cluster.start(), { code: 'SPS_PARTITION_FAILED' });
  t.like((err as Error & { cause: unknown }).cause, { code: 'SPS_UWS_LOAD', retryable: false });
  t.regex(err!.message, /a retry cannot fix/);
  t.true(
    failedTasks.every((n) => n === 0),
    `failed tasks: ${failedTasks.join(', ')}`,
  );
  // The application is still there for the next run.
  const next = echoCluster({ source: { rows: ['a'] } });
  t.teardown(() => next.stop().catch(() => {}));
  await next.start();
  await next.stop();
  t.deepEqual(next.result().get(1), [{ partition: 1, i: 0, row: '"a"' }]);
});

test.serial('SIGKILL of a partition worker: Spark relaunches the task and the partition serves again as attempt 1; the events say so in order', async (t) => {
  t.timeout(180_000);
  const cluster = echoCluster({ source: { range: { end: 10 } } });
  t.teardown(() => cluster.stop().catch(() => {}));
  const seen = recordEvents(cluster);
  const stages: NonNullable<SparkEvent['stage']>[] = [];
  cluster.on('spark', (e) => void (e.stage && stages.push(e.stage)));
  await cluster.start();
  // The job's stage, polled by the runner: both tasks running.
  t.true(await until(() => stages.some((s) => s.tasks === 2 && s.active === 2 && s.failed === 0), 60_000), JSON.stringify(stages));
  t.log(`start: ${seen.join(' | ')}`);
  const of = (p: number): string[] => seen.filter((l) => l.startsWith(`p${p} `));
  t.deepEqual(of(0), ['p0 a0 registered', 'p0 a0 serving']);
  t.deepEqual(of(1), ['p1 a0 registered', 'p1 a0 serving']);
  t.is(seen[0], 'state idle→starting');
  t.true(seen.indexOf('spark job_started') < seen.indexOf('p0 a0 registered'), 'the job starts before any partition registers');
  t.deepEqual(seen.slice(-2), ['start 2/2', 'state starting→running']);
  seen.length = 0;
  const victim = cluster.members.find((m) => m.partition === 1)!;
  t.is(victim.attempt, 0);
  process.kill(victim.pid, 'SIGKILL');
  const back = await until(() => cluster.members.some((m) => m.partition === 1 && m.attempt === 1 && m.state === 'serving'), 120_000);
  t.true(back, `members: ${JSON.stringify(cluster.members)}`);
  const who = await cluster.request<WhoAmI>(1, 'whoami');
  t.like(who, { partition: 1, attempt: 1, count: 5 });
  t.not(who.pid, victim.pid);
  t.deepEqual(await cluster.request<number[]>(1, 'rows'), [5, 6, 7, 8, 9]);
  t.log(`retry: ${seen.join(' | ')}`);
  // The killed task counts as failed in the stage's progress; both run again.
  t.true(await until(() => stages.some((s) => s.failed === 1 && s.active === 2), 60_000), JSON.stringify(stages));
  // Spark relaunches the task on its own: the new attempt replacing the old one is the news, unless
  // the driver noticed the silence first (a liveness failure), which then comes before it.
  const relaunch = ['p1 a1 replaced from a0', 'p1 a1 registered', 'p1 a1 serving'];
  t.deepEqual(seen, seen[0] === 'p1 a0 failed' ? ['p1 a0 failed', ...relaunch] : relaunch);
  seen.length = 0;
  await cluster.stop();
  t.is(cluster.result().get(1)?.length, 5);
  t.log(`stop: ${seen.join(' | ')}`);
  t.is(seen[0], 'state running→stopping');
  t.deepEqual(of(0), ['p0 a0 draining', 'p0 a0 finished']);
  t.deepEqual(of(1), ['p1 a1 draining', 'p1 a1 finished']);
  t.deepEqual(
    seen.filter((l) => l.startsWith('stop ')),
    ['stop 0/2', 'stop 1/2', 'stop 2/2'],
  );
  t.true(seen.indexOf('spark job_finished') > seen.indexOf('stop 2/2'), 'the job ends after the last result');
  t.is(seen.at(-1), 'state stopping→stopped');
});

test.serial('stop() leaves no Spark job, no worker process and no port behind', async (t) => {
  t.timeout(120_000);
  const cluster = echoCluster({ source: { range: { end: 4 } } });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const members = cluster.members;
  const ports: number[] = [];
  for (const m of members) {
    // The echo server has no HTTP server; hold the pids and check the worker processes instead.
    if (m.port !== null) ports.push(m.port);
  }
  t.deepEqual((await app!.status()).jobs, [cluster.id]);
  // The driver starts no worker itself on Spark; the run's workers are found by their environment.
  const pids = workerPidsOf(cluster.id!);
  t.deepEqual([...pids].sort(), members.map((m) => m.pid).sort());
  await cluster.stop();
  t.deepEqual((await app!.status()).jobs, []);
  t.deepEqual(await activeJobsSettled(app!), []);
  // Spark ends the tasks' Python workers; the parent-death signal takes each Node worker along.
  t.true(await until(() => pids.every((pid) => !alive(pid)), 60_000), `workers still running: ${pids.filter(alive)}`);
  for (const port of ports) t.false(await portOpen(port), `port ${port} still open`);
  t.deepEqual(cluster.workerPids, []);
});

test.serial('stop() of an HTTP cluster frees its ports', async (t) => {
  t.timeout(120_000);
  const cluster = testCluster(t, { server: DEMO_SERVER, data: { range: { end: 10 } }, partitions: 2, spark: app, log: testLog });
  await cluster.start();
  const ports = cluster.members.map((m) => m.port!);
  t.is(ports.length, 2);
  for (const port of ports) t.true(await portOpen(port));
  await cluster.stop();
  for (const port of ports) t.false(await portOpen(port), `port ${port} still open`);
});

test.serial('a start that times out cancels the Spark job and ends its workers', async (t) => {
  t.timeout(120_000);
  const cluster = new Cluster({
    server: new URL('./helpers/spark-hang-server.ts', import.meta.url),
    partitions: 2,
    spark: app,
    log: testLog,
    source: { range: { end: 4 } },
    startTimeoutMs: 20_000,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  const seen = new Set<number>();
  let settled = false;
  const starting = cluster.start().finally(() => (settled = true));
  // Both workers running is the event the timeout must come after; it is awaited, not assumed.
  const launched = await until(() => {
    if (cluster.id) workerPidsOf(cluster.id).forEach((p) => seen.add(p));
    return seen.size === 2 || settled;
  }, 60_000);
  t.true(launched && seen.size === 2, `the start ended before Spark ran both workers (seen: ${[...seen]})`);
  await t.throwsAsync(starting, { code: 'SPS_START_TIMEOUT' });
  t.true(await until(() => [...seen].every((pid) => !alive(pid)), 60_000), `workers still running: ${[...seen].filter(alive)}`);
  t.deepEqual((await app!.status()).jobs, []);
  t.deepEqual(await activeJobsSettled(app!), []);
});

test.serial('too few task slots fail with a clear error naming available and needed slots', async (t) => {
  t.timeout(60_000);
  const cluster = echoCluster({ partitions: 3, source: { range: { end: 3 } } });
  t.teardown(() => cluster.stop().catch(() => {}));
  const err = await t.throwsAsync(cluster.start(), { instanceOf: SparkSlotsError });
  t.is(err?.code, 'SPS_SPARK_SLOTS');
  t.like(err, { available: 2, needed: 3 });
  t.regex(err!.message, /can run 2 task\(s\) at once but the cluster needs 3/);
  t.is(cluster.state, 'failed');
  t.deepEqual((await app!.status()).jobs, []);
});

test.serial('a missing Spark home fails with DependencyMissingError', async (t) => {
  const cluster = new Cluster({ server: ECHO_SERVER, master: 'local[1]', sparkHome: join(dir, 'no-spark'), log: testLog });
  const err = await t.throwsAsync(cluster.start(), { instanceOf: DependencyMissingError });
  t.regex(err!.message, /spark-submit in ".*no-spark" \(option sparkHome\)/);
});

test.serial('a Spark application that is not ready within sparkStartTimeoutMs fails naming that option, and its spark-submit is stopped', async (t) => {
  const before = sparkSubmitChildren();
  const cluster = new Cluster({ server: ECHO_SERVER, master: 'local[1]', sparkStartTimeoutMs: 1, log: testLog });
  const err = await t.throwsAsync(cluster.start(), { instanceOf: SparkError });
  t.is(err!.code, 'SPS_SPARK_START');
  t.regex(err!.message, /not ready within 1 ms \(startTimeoutMs; a cluster's sparkStartTimeoutMs\)/);
  t.is(cluster.state, 'failed');
  t.deepEqual(sparkSubmitChildren(), before);
});

// Each kind of source, with the rows the partition servers must see (in any partition).
test.serial.before(async () => {
  writeFileSync(join(dir, 'lines.txt'), 'alpha\nbeta\ngamma\n');
  writeFileSync(join(dir, 'people.json'), '{"name":"ann","age":31}\n{"name":"bob","age":42}\n{"name":"cy","age":7}\n');
  writeFileSync(join(dir, 'people.csv'), 'name,age\nann,31\nbob,42\n');
  await app!.sql(`INSERT OVERWRITE DIRECTORY '${join(dir, 'people.parquet')}' USING parquet SELECT * FROM VALUES ('ann', 31), ('bob', 42) AS t(name, age)`);
  await app!.sql(`CREATE OR REPLACE TEMPORARY VIEW sps_people AS SELECT * FROM VALUES ('ann', 31), ('bob', 42), ('dee', 9) AS t(name, age)`);
});

const people = (...p: [string, number][]): unknown[] => p.map(([name, age]) => ({ name, age }));
const sources: [string, () => SparkSource, unknown[]][] = [
  ['range', () => ({ range: { start: 10, end: 20, step: 3 } }), [10, 13, 16, 19]],
  ['rows (parallelized array)', () => ({ rows: [{ a: 1 }, { a: 2 }, 'three'] }), [{ a: 1 }, { a: 2 }, 'three']],
  ['textFile', () => ({ textFile: join(dir, 'lines.txt') }), ['alpha', 'beta', 'gamma']],
  ['parquet', () => ({ parquet: join(dir, 'people.parquet') }), people(['ann', 31], ['bob', 42])],
  ['json', () => ({ json: join(dir, 'people.json') }), people(['ann', 31], ['bob', 42], ['cy', 7])],
  ['csv', () => ({ csv: join(dir, 'people.csv'), options: { header: 'true', inferSchema: 'true' } }), people(['ann', 31], ['bob', 42])],
  // Nulls stay (every row has every column), arrays stay arrays, a dotted name stays one key.
  [
    'sql',
    () => ({ sql: "SELECT id, id * 2 AS twice, IF(id = 1, NULL, 'x') AS maybe, array(id, id) AS pair, id AS `a.b` FROM range(3)" }),
    [0, 1, 2].map((id) => ({ id, twice: id * 2, maybe: id === 1 ? null : 'x', pair: [id, id], 'a.b': id })),
  ],
  ['table', () => ({ table: 'sps_people' }), people(['ann', 31], ['bob', 42], ['dee', 9])],
];

const key = (v: unknown): string => JSON.stringify(v);
const sorted = (rows: unknown[]): unknown[] => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

for (const [name, source, expected] of sources) {
  test.serial(`source: ${name}`, async (t) => {
    t.timeout(120_000);
    const cluster = echoCluster({ source: source() });
    t.teardown(() => cluster.stop().catch(() => {}));
    await cluster.start();
    const replies = await cluster.requestAll<unknown[]>('rows');
    const rows: unknown[] = [];
    for (const [p, reply] of replies) {
      t.true(reply.ok, `partition ${p}`);
      if (reply.ok) rows.push(...reply.value);
    }
    // Objects are compared with sorted keys: Spark may reorder nothing, but JSON keys must match.
    const norm = (v: unknown): unknown => (v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort()) : v);
    t.deepEqual(sorted(rows.map(norm)), sorted(expected.map(norm)));
    await cluster.stop();
  });
}

test.serial('a cached result dataset counts, collects, saves as parquet, and the cluster starts again on the same source', async (t) => {
  t.timeout(240_000);
  const cluster = echoCluster({ source: { range: { end: 6 } }, cacheResult: true });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  await cluster.stop();
  const ds = cluster.resultDataset!;
  t.truthy(ds);
  t.teardown(() => ds.unpersist().catch(() => {}));
  const expected = [0, 1, 2, 3, 4, 5].map((n) => ({ partition: n < 3 ? 0 : 1, i: n % 3, row: String(n) }));
  t.is(await ds.count(), 6);
  t.deepEqual(sorted(await ds.collect()), sorted(expected));
  t.true((await app!.status()).datasets.includes(ds.id));
  const out = join(dir, 'result.parquet');
  await ds.save(out, { format: 'parquet' });
  const back = await app!.sql(`SELECT partition, i, row FROM parquet.\`${out}\``);
  t.deepEqual(sorted(back), sorted(expected));
  await ds.save(join(dir, 'result.json'), { format: 'json' });
  t.is((await app!.sql(`SELECT count(*) AS n FROM json.\`${join(dir, 'result.json')}\``))[0]?.n, 6);

  await cluster.start();
  t.deepEqual(await cluster.request<number[]>(1, 'rows'), [3, 4, 5]);
  await cluster.stop();
  const again = cluster.resultDataset!;
  t.not(again.id, ds.id);
  t.is(await again.count(), 6);
  await again.unpersist();
  await ds.unpersist();
  t.deepEqual((await app!.status()).datasets, []);
});

test.serial('barrier mode: a killed worker restarts the whole group', async (t) => {
  t.timeout(180_000);
  const cluster = echoCluster({ source: { range: { end: 4 } }, barrier: true });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const before = cluster.members;
  process.kill(before[0]!.pid, 'SIGKILL');
  const restarted = await until(
    () => cluster.members.length === 2 && cluster.members.every((m) => m.state === 'serving' && m.attempt > before[m.partition]!.attempt),
    150_000,
  );
  t.true(restarted, `members: ${JSON.stringify(cluster.members)}`);
  t.deepEqual(await cluster.request<number[]>(0, 'rows'), [0, 1]);
  // Spark kills the other barrier tasks' Python workers asynchronously; their workers follow.
  t.true(await until(() => before.every((m) => !alive(m.pid)), 60_000), 'old workers still running');
  await cluster.stop();
  t.deepEqual(
    cluster
      .result()
      .get(1)
      ?.map((r) => (r as { row: string }).row),
    ['2', '3'],
  );
});

test.serial('on Spark, a stolen partition credential gives no orders, forges no job event, and the runner refuses malformed orders', async (t) => {
  t.timeout(120_000);
  const options = { server: ECHO_SERVER, partitions: 2, log: testLog, startTimeoutMs: 120_000 };
  const launcher = new CapturingLauncher(new SparkLauncher(resolveOptions({ ...options, spark: app, source: { range: { end: 4 } } })));
  const cluster = testCluster(t, { ...options, launcher });
  await cluster.start();
  // What an attacker on an executor could take: a partition's bus access (in the task closure).
  const stolen: BusAccess = launcher.plan!.busFor(1);
  t.is(stolen.inboxPrefix, `_INBOX.${cluster.id}.p1`);
  t.false(JSON.stringify(process.argv).includes(stolen.auth && 'nkeySeed' in stolen.auth ? stolen.auth.nkeySeed : 'x'));
  const nc = await connectBus(stolen, 'intruder');
  t.teardown(() => nc.close());
  const refused: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) refused.push(s.error.subject);
  })();
  const s = subjectsFor(cluster.id!);
  const forged = [s.spark('result'), s.spark('job_finished'), s.spark('job_failed'), s.spark('cancel'), s.shutdown, `sps.${app!.id}.spark.submit`];
  nc.publish(s.spark('job_finished'), encode('job_finished', { partitions: 2, records: 0, dataset: null }));
  for (const subject of forged) nc.publish(subject, encode('cancel', {}));
  await nc.flush();
  t.true(await until(() => forged.every((f) => refused.includes(f)), 10_000), `refused: ${refused.join(', ')}`);
  // The application's own bus admits no partition identity at all.
  await t.throwsAsync(connectBus({ ...stolen, url: app!.natsUrl }, 'intruder-app'), { message: /Authorization Violation/i });
  // Orders that do not match the protocol are refused by the runner, which keeps working.
  await t.throwsAsync(app!.request('sql', { statement: 42 as unknown as string, limit: 1 }), {
    code: 'SPS_MALFORMED_MESSAGE',
    message: /field 'statement'|statement/,
  });
  t.deepEqual(await cluster.request(0, 'rows'), [0, 1]);
  await cluster.stop();
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
});
