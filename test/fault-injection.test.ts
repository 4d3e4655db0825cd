/**
 * The fault-injection suite: each case holds partition 1's first attempt at one moment of its life
 * (init, serving, drain, result transfer), injects a fault there, and checks the outcome the
 * README's fault table promises: the partition is retried, every request to the others is
 * answered, every partition's result is present exactly once and whole (results over 10 MB
 * included), taken only from the attempt that delivered it, and no worker or Spark job is left.
 * Faults at other points are in faults.test.ts, liveness.test.ts and worker-faults.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { Cluster, RequestError, type SparkApplication } from '../src/index.js';
import type { Moment, MomentConfig, MomentReport } from './fixtures/moment-server.js';
import { childrenOf, firstLine, isAlive, sharedNats, waitUntil } from './helpers/harness.js';
import { startApp, workerPidsOf } from './helpers/spark-harness.js';

const MOMENT_SERVER = new URL('./fixtures/moment-server.ts', import.meta.url);
const nats = sharedNats();
let app: Promise<SparkApplication> | undefined;
test.after.always(async () => {
  if (app) await (await app).close();
  await nats.stop();
});

interface Case {
  launcher: 'embedded' | 'spark';
  fault: 'SIGKILL' | 'SIGSTOP';
  moment: Moment | 'serving';
  /** A result of 2000 records of 6 KB (12 MB) per partition instead of 3 small ones. */
  big?: boolean;
}

/** The moments partitions announce, as they come. */
async function watchMoments(url: string, clusterId: () => string | undefined) {
  const nc = await connect({ servers: url });
  const seen: MomentReport[] = [];
  nc.subscribe('sps.*.app.moment', {
    callback: (_err, msg) => {
      if (msg.subject === `sps.${clusterId()}.app.moment`) seen.push(JSON.parse(msg.string()) as MomentReport);
    },
  });
  await nc.flush();
  return {
    seen,
    next: async (partition: number, attempt: number, moment: Moment): Promise<MomentReport> => {
      await waitUntil(
        () => seen.some((r) => r.partition === partition && r.attempt === attempt && r.moment === moment),
        120_000,
        `p${partition}/a${attempt} at ${moment}`,
      );
      return seen.find((r) => r.partition === partition && r.attempt === attempt && r.moment === moment)!;
    },
    release: async (id: string) => {
      nc.publish(`sps.${id}.app.release`);
      await nc.flush();
    },
    close: () => nc.close(),
  };
}

async function runCase(t: ExecutionContext, c: Case): Promise<void> {
  const server = await nats.get();
  const lines: string[] = [];
  const records = c.big ? 2000 : 3;
  const config: MomentConfig = {
    resultRecords: records,
    recordBytes: c.big ? 6000 : 10,
    ...(c.moment === 'serving' ? {} : { holdAt: { partition: 1, attempt: 0, moment: c.moment } }),
  };
  const spark = c.launcher === 'spark' ? await (app ??= startApp('local[2]')) : undefined;
  const cluster = new Cluster<number, MomentConfig, { partition: number; attempt: number; i: number; pad: string }>({
    server: MOMENT_SERVER,
    partitions: 2,
    config,
    natsUrl: server.url,
    hangTimeoutMs: 2000,
    stopTimeoutMs: 120_000,
    log: (l) => lines.push(l),
    ...(spark ? { spark, source: { range: { start: 1, end: 7 } } } : { data: [1, 2, 3, 4, 5, 6] }),
  });
  const moments = await watchMoments(server.url, () => cluster.id);
  const victims: number[] = [];
  t.teardown(async () => {
    await moments.close();
    for (const pid of victims) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    await cluster.stop().catch(() => {});
  });
  const inject = (pid: number): void => {
    victims.push(pid);
    process.kill(pid, c.fault);
  };

  const starting = cluster.start();
  if (c.moment === 'init') inject((await moments.next(1, 0, 'init')).pid);
  await starting;
  if (c.moment === 'serving') {
    // Requests to partition 0 while partition 1 goes down: each is answered, once.
    const inFlight = Array.from({ length: 20 }, () => cluster.request<number>(0, 'sum'));
    inject(cluster.members[1]!.pid);
    t.deepEqual(await Promise.all(inFlight), Array(20).fill(6));
    await waitUntil(() => cluster.members[1]!.attempt === 1 && cluster.members[1]!.state === 'serving', 120_000, 'attempt 1 serving');
  }
  if (c.moment === 'init' || c.moment === 'serving') {
    t.is(cluster.members[1]!.attempt, 1);
    const sums = await cluster.requestAll<number>('sum');
    t.deepEqual(
      [...sums.values()].map((r) => (r.ok ? r.value : r.error.code)),
      [6, 15],
    );
    // A handler that throws is an error reply; the same attempt serves on.
    const err = await t.throwsAsync<RequestError>(cluster.request(0, 'throws'));
    t.is(err?.code, 'TEST_REFUSED');
    t.is(cluster.members[0]!.attempt, 0);
  }
  const stopping = cluster.stop();
  if (c.moment === 'drain' || c.moment === 'result') inject((await moments.next(1, 0, c.moment)).pid);
  await stopping;

  t.is(cluster.state, 'stopped');
  const result = cluster.result();
  t.deepEqual([...result.keys()].sort(), [0, 1]);
  for (const [p, recs] of result) {
    const attempt = cluster.members[p]!.attempt;
    t.is(attempt, p === 1 ? 1 : 0, `partition ${p}'s attempt`);
    t.is(recs.length, records, `partition ${p}: every record, once`);
    t.true(
      recs.every((r, i) => r.i === i && r.partition === p && r.attempt === attempt),
      `partition ${p}: records in order, all from attempt ${attempt}`,
    );
  }
  if (c.big) t.true(JSON.stringify(result.get(1)).length > 10_000_000);
  // Embedded, the launcher says why the attempt failed (on Spark, the application's log does).
  if (!spark) {
    const why = c.fault === 'SIGSTOP' ? /p1\/a0\] hung: no liveness tick/ : /p1\/a0\] attempt failed: killed by SIGKILL/;
    t.true(
      lines.some((l) => why.test(l)),
      lines.filter((l) => /p1/.test(l)).join('\n'),
    );
  }
  // Nothing left: every worker of every attempt is gone, and Spark runs no job.
  const pids = [...new Set(moments.seen.map((r) => r.pid).concat(victims))];
  t.true(pids.length >= 3);
  await waitUntil(() => pids.every((pid) => !isAlive(pid)), 10_000, `workers ${pids.join(', ')} gone`);
  if (spark) t.deepEqual((await spark.status()).jobs, []);
}

const cases: Case[] = [
  { launcher: 'embedded', fault: 'SIGKILL', moment: 'init' },
  { launcher: 'embedded', fault: 'SIGKILL', moment: 'serving' },
  { launcher: 'embedded', fault: 'SIGSTOP', moment: 'serving' },
  { launcher: 'embedded', fault: 'SIGKILL', moment: 'drain' },
  { launcher: 'embedded', fault: 'SIGSTOP', moment: 'drain' },
  { launcher: 'embedded', fault: 'SIGKILL', moment: 'result', big: true },
  { launcher: 'spark', fault: 'SIGKILL', moment: 'init' },
  { launcher: 'spark', fault: 'SIGKILL', moment: 'drain' },
  { launcher: 'spark', fault: 'SIGKILL', moment: 'result', big: true },
];

for (const c of cases) {
  test.serial(
    `${c.launcher}: ${c.fault} of a worker at ${c.moment}${c.big ? ' (12 MB results)' : ''}: retried, every result once and whole, nothing left`,
    async (t) => {
      t.timeout(240_000);
      await runCase(t, c);
    },
  );
}

test.serial('spark: SIGKILL of the driver takes its spark-submit and every worker down with it', async (t) => {
  t.timeout(240_000);
  const driver = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), new URL('./fixtures/spark-driver.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => driver.kill('SIGKILL'));
  const { clusterId, workers } = JSON.parse(await firstLine(driver)) as { clusterId: string; workers: number[] };
  const submit = childrenOf(driver.pid!);
  t.true(submit.length >= 1, 'the driver runs spark-submit');
  t.deepEqual(workerPidsOf(clusterId).sort(), [...workers].sort());
  driver.kill('SIGKILL');
  const left = (): number[] => [...submit, ...workers].filter(isAlive);
  await waitUntil(() => left().length === 0, 60_000, 'spark-submit and the workers to exit');
  t.deepEqual(left(), []);
  t.deepEqual(workerPidsOf(clusterId), []);
});
