import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pack, unpack } from 'msgpackr';
import { Cluster } from '../src/index.js';
import { requestAllElastic } from '../examples/07-logistic-regression.js';
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
    // 200,000 float64 (1.6 MB): the state travels in chunks.
    const job: ElasticJob = { iterations: 30, commitEvery: 5, size: 200_000, hold: { partition: 1, commit: 3 } };
    const rejoined: number[] = [];
    const run = requestAllElastic<RunReply, unknown, unknown>(cluster, 'run', job, { onRejoin: (p) => rejoined.push(p) });
    // Partition 1 holds after step 15, before commit 3: commit 2 (iteration 10) is complete everywhere, and no partition
    // can complete commit 3 (or step 16) without it.
    await next('holding', (r) => r.partition === 1 && r.iteration === 15);
    const attempt = kill(cluster, 1);
    const replies = await run;
    t.deepEqual(rejoined, [1]);
    t.true(replies.get(1)!.attempt > attempt, 'partition 1 finished as a new attempt');
    for (const p of [0, 2]) {
      t.deepEqual(replies.get(p)!.resets, [2], `survivor ${p} went back to commit 2`);
      // 15 steps before the kill, 20 after the restore: not the whole run again.
      t.is(replies.get(p)!.executed, 35, `survivor ${p}`);
    }
    t.is(replies.get(1)!.executed, 20, 'the new attempt started at iteration 10');
    await checkConverged(t, cluster, job, replies);
  },
);
