/**
 * Liveness: a worker whose event loop is blocked, or whose process is stopped, stops ticking on its
 * tick pipe; whoever started it (the embedded launcher, or the Spark task) kills it and the
 * partition is retried like a crash. Real processes; every wait is bounded polling on events.
 */
import test from 'ava';
import { Cluster } from '../src/index.js';
import { isAlive, waitUntil } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';
import { startApp, testLog, until } from './helpers/spark-harness.js';

const HANG_SERVER = new URL('./fixtures/hang-server.ts', import.meta.url);

interface WhoAmI {
  partition: number;
  attempt: number;
  pid: number;
}

/** A log that keeps the lines (and shows them only when asked for, like the other tests). */
function keptLog(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return {
    lines,
    log: (line) => {
      lines.push(line);
      if (process.env.SPS_TEST_LOG) process.stderr.write(line + '\n');
    },
  };
}

function forceEnd(pid: number): void {
  for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

test.serial('embedded: a worker whose event loop is blocked is killed as hung and serves again as attempt 1', async (t) => {
  const { lines, log } = keptLog();
  await withCluster(t, { server: HANG_SERVER, data: [1, 2, 3, 4], partitions: 2, hangTimeoutMs: 2000, heartbeatMs: 200, log }, async (cluster) => {
    const old = cluster.members[1]!;
    t.is(old.attempt, 0);
    t.teardown(() => forceEnd(old.pid));
    // The handler never returns: the request times out, and the worker stops ticking.
    await t.throwsAsync(cluster.request(1, 'spin', undefined, { timeoutMs: 500 }));
    await waitUntil(() => cluster.members[1]?.attempt === 1 && cluster.members[1]?.state === 'serving', 60_000, 'attempt 1 of partition 1 serving');
    const fresh = cluster.members[1]!;
    t.not(fresh.pid, old.pid);
    await waitUntil(() => !isAlive(old.pid), 10_000, `hung worker ${old.pid} gone`);
    t.true(
      lines.some((l) => /p1\/a0\] hung: no liveness tick for 2000 ms; killing worker \d+/.test(l)),
      lines.join('\n'),
    );
    t.deepEqual(await cluster.request<WhoAmI>(1, 'whoami'), { partition: 1, attempt: 1, pid: fresh.pid });
    // Attempt 1 does not spin.
    t.deepEqual(await cluster.request(1, 'spin'), { spun: false, attempt: 1 });
    t.is(cluster.members[0]!.attempt, 0);
    await cluster.stop();
    t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 0, count: 2 }]);
    t.deepEqual(cluster.result().get(1), [{ partition: 1, attempt: 1, count: 2 }]);
  });
});

test.serial('embedded: a SIGSTOPped worker is killed as hung and replaced by the next attempt', async (t) => {
  const { lines, log } = keptLog();
  await withCluster(t, { server: HANG_SERVER, data: [1, 2, 3, 4], partitions: 2, hangTimeoutMs: 2000, heartbeatMs: 200, log }, async (cluster) => {
    const old = cluster.members[0]!;
    t.is(old.attempt, 0);
    t.teardown(() => forceEnd(old.pid));
    process.kill(old.pid, 'SIGSTOP');
    await waitUntil(() => cluster.members[0]?.attempt === 1 && cluster.members[0]?.state === 'serving', 60_000, 'attempt 1 of partition 0 serving');
    const fresh = cluster.members[0]!;
    t.not(fresh.pid, old.pid);
    await waitUntil(() => !isAlive(old.pid), 10_000, `stopped worker ${old.pid} gone`);
    t.true(
      lines.some((l) => /p0\/a0\] hung: no liveness tick for 2000 ms/.test(l)),
      lines.join('\n'),
    );
    t.deepEqual(await cluster.request<WhoAmI>(0, 'whoami'), { partition: 0, attempt: 1, pid: fresh.pid });
    // The other partition was never touched.
    t.is(cluster.members[1]!.attempt, 0);
    await cluster.stop();
    t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 1, count: 2 }]);
    t.deepEqual(cluster.result().get(1), [{ partition: 1, attempt: 0, count: 2 }]);
  });
});

test.serial('Spark local: a worker whose event loop is blocked is killed by its task, and Spark retries the partition', async (t) => {
  t.timeout(240_000);
  const app = await startApp('local[2,4]');
  t.teardown(() => app.close());
  const cluster = new Cluster({
    server: HANG_SERVER,
    partitions: 2,
    spark: app,
    source: { range: { end: 4 } },
    hangTimeoutMs: 2000,
    heartbeatMs: 200,
    startTimeoutMs: 120_000,
    log: testLog,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const old = cluster.members.find((m) => m.partition === 1)!;
  t.is(old.attempt, 0);
  t.teardown(() => forceEnd(old.pid));
  await t.throwsAsync(cluster.request(1, 'spin', undefined, { timeoutMs: 500 }));
  const back = await until(() => cluster.members.some((m) => m.partition === 1 && m.attempt >= 1 && m.state === 'serving'), 120_000);
  t.true(back, `members: ${JSON.stringify(cluster.members)}`);
  const fresh = cluster.members.find((m) => m.partition === 1)!;
  t.not(fresh.pid, old.pid);
  t.true(await until(() => !isAlive(old.pid), 30_000), `hung worker ${old.pid} still running`);
  t.like(await cluster.request<WhoAmI>(1, 'whoami'), { partition: 1, attempt: fresh.attempt, pid: fresh.pid });
  await cluster.stop();
  t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 0, count: 2 }]);
  t.deepEqual(cluster.result().get(1), [{ partition: 1, attempt: fresh.attempt, count: 2 }]);
});
