/**
 * Option `isolation: 'thread'` on a real local-mode Spark (local[4,4]): the tasks of a run on an
 * executor run their attempts as threads of one partition host process, which they reach on a Unix
 * socket in a private directory; each task's channels are FIFOs of its own private directory.
 */
import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type SparkApplication } from '../src/index.js';
import { alive, startApp, testLog, until } from './helpers/spark-harness.js';

const SERVER = new URL('./helpers/spark-thread-server.ts', import.meta.url);
/** Where the runner keeps its partition hosts' sockets and its tasks' FIFO directories. */
const HOST_DIR = join(tmpdir(), `sps-host-${process.getuid!()}`);

let app: SparkApplication | undefined;

test.before(async () => {
  app = await startApp('local[4,4]');
});

test.after.always(async () => {
  await app?.close();
});

interface WhoAmI {
  partition: number;
  attempt: number;
  pid: number;
  count: number;
}

/** What the run left in the host directory: its socket, and any task's FIFO directory. */
function leftovers(clusterId: string): string[] {
  if (!existsSync(HOST_DIR)) return [];
  return readdirSync(HOST_DIR).filter((name) => name.startsWith(clusterId) || name.startsWith('sps-task-'));
}

function threadCluster(extra: Record<string, unknown>): Cluster {
  return new Cluster({ server: SERVER, partitions: 4, spark: app, isolation: 'thread', log: testLog, startTimeoutMs: 120_000, ...extra });
}

test.serial('every partition serves as a thread of one partition host; results arrive once; stop() leaves no host, socket or FIFO', async (t) => {
  t.timeout(180_000);
  const cluster = threadCluster({ source: { range: { end: 20 } } });
  t.teardown(() => cluster.stop().catch(() => {}));
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
  const cluster = threadCluster({ source: { range: { end: 20 } }, config: { failOnce: 2 } });
  t.teardown(() => cluster.stop().catch(() => {}));
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
