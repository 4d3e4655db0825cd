import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pack, unpack } from 'msgpackr';
import { Cluster } from '../src/index.js';
import { checksum, expectedModel, type ElasticJob, type ElasticReport } from './fixtures/elastic-server.js';
import { sharedNats } from './helpers/harness.js';

const SERVER = new URL('./fixtures/elastic-server.ts', import.meta.url);
const nats = sharedNats();
test.after.always(() => nats.stop());

type RunReply = { iteration: number; checksum: number; attempt: number; executed: number; resets: number[] };

/** A cluster of `n` partitions on a test's own nats-server, and a connection that hears the partitions' reports. */
async function elasticCluster(t: ExecutionContext, n: number) {
  const server = await nats.get();
  const cluster = new Cluster({ server: SERVER, data: [], partitions: n, natsUrl: server.url, log: false });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const watcher = await connect({ servers: server.url });
  t.teardown(() => watcher.close());
  return { cluster, watcher, ...reports(watcher, cluster.id!) };
}

/** Waits for reports: `next(kind, test)` resolves with the first report of `kind` (from now on) that passes `test`. */
function reports(watcher: NatsConnection, id: string) {
  const waiters = new Set<{ kind: string; test: (r: ElasticReport) => boolean; resolve: (r: ElasticReport) => void }>();
  watcher.subscribe(`sps.${id}.app.elastic.*`, {
    callback: (_err, msg) => {
      const kind = msg.subject.split('.').at(-1)!;
      const r = unpack(msg.data) as ElasticReport;
      for (const w of [...waiters]) {
        if (w.kind === kind && w.test(r)) {
          waiters.delete(w);
          w.resolve(r);
        }
      }
    },
  });
  const next = (kind: string, test: (r: ElasticReport) => boolean): Promise<ElasticReport> => new Promise((resolve) => waiters.add({ kind, test, resolve }));
  const go = async (partition: number): Promise<void> => {
    watcher.publish(`sps.${id}.app.elastic.go.${partition}`, pack(null));
    await watcher.flush();
  };
  return { next, go };
}

/** Asks every partition to run `job`, asking a replaced partition's new attempt again; each partition's reply. */
async function runAll(cluster: Cluster, job: ElasticJob, onRejoin?: (partition: number) => void): Promise<Map<number, RunReply>> {
  const replies = await cluster.requestAll<RunReply>('run', job, { timeoutMs: 120_000, rejoin: { timeoutMs: 60_000, ...(onRejoin ? { onRejoin } : {}) } });
  const out = new Map<number, RunReply>();
  for (const [p, r] of replies) {
    if (!r.ok) throw r.error;
    out.set(p, r.value);
  }
  return out;
}

function kill(cluster: Cluster, partition: number): number {
  const m = cluster.members.find((x) => x.partition === partition)!;
  process.kill(m.pid, 'SIGKILL');
  return m.attempt;
}

/** Every partition reached the fault-free model, and holds the same state (asked through an endpoint). */
async function checkConverged(t: ExecutionContext, cluster: Cluster, job: ElasticJob, replies: Map<number, RunReply>): Promise<void> {
  const want = checksum(expectedModel(cluster.partitions, job.size, job.iterations));
  for (const [p, r] of replies) t.like(r, { iteration: job.iterations, checksum: want }, `partition ${p}`);
  const states = await cluster.requestAll<{ iteration: number; checksum: number }>('state');
  for (const [p, r] of states) t.like(r.ok ? r.value : r.error, { iteration: job.iterations, checksum: want }, `state of partition ${p}`);
}

test.serial(
  'a partition SIGKILLed between commits: survivors keep their state, the new attempt gets the last commit from a survivor, and the run ends with the fault-free model',
  async (t) => {
    const { cluster, next } = await elasticCluster(t, 3);
    await t.throwsAsync(cluster.requestAll('state', null, { rejoin: { waitMs: 1 } as never }), { message: /waitMs/ });
    // 200,000 float64 (1.6 MB): the state travels in chunks.
    const job: ElasticJob = { iterations: 30, commitEvery: 5, size: 200_000, holds: [{ partition: 1, iteration: 12 }] };
    const rejoined: number[] = [];
    const run = runAll(cluster, job, (p) => rejoined.push(p));
    // Partition 1 holds after step 12: commit 2 (iteration 10) is complete everywhere, and no partition can complete step 13.
    await next('holding', (r) => r.partition === 1 && r.iteration === 12);
    const attempt = kill(cluster, 1);
    const replies = await run;
    t.deepEqual(rejoined, [1]);
    t.true(replies.get(1)!.attempt > attempt, 'partition 1 finished as a new attempt');
    for (const p of [0, 2]) {
      t.deepEqual(replies.get(p)!.resets, [2], `survivor ${p} went back to commit 2`);
      // 12 steps before the kill, 20 after the restore: not the whole run again.
      t.is(replies.get(p)!.executed, 32, `survivor ${p}`);
    }
    t.is(replies.get(1)!.executed, 20, 'the new attempt started at iteration 10');
    await checkConverged(t, cluster, job, replies);
  },
);

test.serial(
  'a partition SIGKILLed during a commit: the commit is not complete (not every partition made it), and the group goes back to the one before',
  async (t) => {
    const { cluster, next } = await elasticCluster(t, 3);
    // Partition 1 holds before commit 2 while partitions 0 and 2 are in it.
    const job: ElasticJob = { iterations: 20, commitEvery: 5, size: 50_000, holds: [{ partition: 1, commit: 2 }] };
    const inCommit = Promise.all([0, 2].map((p) => next('committing', (r) => r.partition === p && r.commit === 2)));
    const run = runAll(cluster, job);
    await next('holding', (r) => r.partition === 1);
    await inCommit;
    kill(cluster, 1);
    const replies = await run;
    for (const p of [0, 2]) {
      t.deepEqual(replies.get(p)!.resets, [1], `survivor ${p} went back to commit 1 (iteration 5)`);
      t.is(replies.get(p)!.executed, 25, `survivor ${p}`);
    }
    t.is(replies.get(1)!.executed, 15);
    await checkConverged(t, cluster, job, replies);
  },
);

test.serial('a partition SIGKILLed during the restore of another: the restore starts again and every partition ends equal', async (t) => {
  const { cluster, next, go } = await elasticCluster(t, 3);
  // Partition 1 holds after step 12; partition 0 holds at the start of its first restore, so that restore cannot complete.
  const job: ElasticJob = {
    iterations: 20,
    commitEvery: 5,
    size: 200_000,
    holds: [
      { partition: 1, iteration: 12 },
      { partition: 0, restore: true },
    ],
  };
  const run = runAll(cluster, job);
  await next('holding', (r) => r.partition === 1);
  const restoring = Promise.all([next('holding', (r) => r.partition === 0), next('restoring', (r) => r.partition === 2)]);
  kill(cluster, 1);
  // Partition 2 is in the restore (waiting for 0 and for partition 1's new attempt): kill it there.
  await restoring;
  kill(cluster, 2);
  await go(0);
  const replies = await run;
  t.deepEqual(replies.get(0)!.resets, [2], 'partition 0 restored commit 2, once');
  for (const p of [1, 2]) t.like(replies.get(p), { attempt: 1, executed: 10 }, `partition ${p}: a new attempt, from iteration 10`);
  await checkConverged(t, cluster, job, replies);
});

test.serial('two partitions SIGKILLed in turn: each new attempt joins from the last commit', async (t) => {
  const { cluster, next } = await elasticCluster(t, 4);
  const job: ElasticJob = { iterations: 40, commitEvery: 5, size: 100_000, holds: [{ partition: 1, iteration: 7 }] };
  const rejoined: number[] = [];
  const run = runAll(cluster, job, (p) => rejoined.push(p));
  await next('holding', (r) => r.partition === 1 && r.iteration === 7);
  const computing = next('iteration', (r) => r.partition === 1 && r.attempt > 0 && r.iteration === 22);
  kill(cluster, 1);
  // Once partition 1's new attempt computes past commit 4 (iteration 20), kill partition 3.
  await computing;
  kill(cluster, 3);
  const replies = await run;
  t.deepEqual(rejoined.sort(), [1, 3]);
  const resets = replies.get(0)!.resets;
  t.is(resets.length, 2, 'partition 0 restored twice');
  t.is(resets[0], 1, 'first back to commit 1 (iteration 5)');
  t.true(resets[1]! >= 4, `then to commit ${resets[1]} (iteration 20 or later), not the start`);
  await checkConverged(t, cluster, job, replies);
});
