/**
 * A 3-node nats-server cluster (real processes, routes on loopback) as the run's bus (`natsUrl` as a
 * list): the node the driver is connected to, then one a worker is connected to, are SIGKILLed under
 * request load; every client fails over, every partition answers again, and every result arrives once.
 */
import test, { type ExecutionContext } from 'ava';
import { Cluster, RequestError } from '../src/index.js';
import { startNatsCluster, type NatsClusterProcess } from '../src/transport/nats-cluster.js';
import type { NatsServerProcess } from '../src/transport/nats-server.js';
import { TEST_SERVER, waitUntil } from './helpers/harness.js';

/** Names of the client connections a node holds (its monitoring endpoint's `/connz`). */
async function connectionNames(node: NatsServerProcess): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/connz?limit=4096`);
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).map((c) => c.name ?? '');
}

/** The live node holding a connection whose name matches `name`. */
async function nodeHolding(nats: NatsClusterProcess, alive: Set<NatsServerProcess>, name: RegExp): Promise<NatsServerProcess> {
  let found: NatsServerProcess | undefined;
  await waitUntil(
    async () => {
      for (const n of alive) if ((await connectionNames(n)).some((c) => name.test(c))) found = n;
      return found !== undefined;
    },
    30_000,
    `a node holding ${name}`,
  );
  return found!;
}

/** Requests round-robin over the partitions until stopped, a few at a time; counts outcomes by code. */
function requestLoad(cluster: Cluster, partitions: number): { stop(): Promise<void>; ok: number; failed: Map<string, number> } {
  let running = true;
  const state = { ok: 0, failed: new Map<string, number>() };
  const lane = async (lane: number): Promise<void> => {
    for (let i = lane; running && i < 1_000_000; i += 4) {
      try {
        await cluster.request(i % partitions, 'sum', undefined, { timeoutMs: 2000 });
        state.ok++;
      } catch (err) {
        const code = err instanceof RequestError ? err.code : (err as Error).name;
        state.failed.set(code, (state.failed.get(code) ?? 0) + 1);
      }
    }
  };
  const lanes = Promise.all([0, 1, 2, 3].map(lane));
  return Object.assign(state, {
    stop: async () => {
      running = false;
      await lanes;
    },
  });
}

/** Kills `node` and returns once every partition answers again, with how long that took. */
async function killAndRecover(t: ExecutionContext, cluster: Cluster, node: NatsServerProcess, alive: Set<NatsServerProcess>): Promise<number> {
  const t0 = performance.now();
  process.kill(node.pid, 'SIGKILL');
  alive.delete(node);
  await node.exited;
  await waitUntil(
    async () => {
      const replies = await cluster.requestAll('sum', undefined, { timeoutMs: 1000 });
      return [...replies.values()].every((r) => r.ok);
    },
    60_000,
    'every partition answering again',
  );
  const ms = performance.now() - t0;
  t.log(`node ${node.port} killed → every partition answering in ${ms.toFixed(0)} ms`);
  return ms;
}

test.serial('a 3-node cluster as natsUrl: killing the driver’s node, then a worker’s, under load loses no result', async (t) => {
  t.timeout(240_000);
  const token = 'cluster-test-token';
  const nats = await startNatsCluster(3, { token, monitor: true });
  t.teardown(() => nats.stop());
  const data = Array.from({ length: 12 }, (_, i) => i + 1);
  const cluster = new Cluster({
    server: TEST_SERVER,
    data,
    partitions: 3,
    natsUrl: nats.nodes.map((n) => n.url),
    natsAuth: { token },
    reconnectWindowMs: 60_000,
    log: false,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  t.is(cluster.natsUrl, nats.url, 'every URL is kept');
  const expected = await cluster.requestAll<number>('sum');
  const pids = cluster.members.map((m) => m.pid);
  const alive = new Set(nats.nodes);
  const load = requestLoad(cluster, 3);

  const driverNode = await nodeHolding(nats, alive, new RegExp(`^sps-${cluster.id}-driver$`));
  await killAndRecover(t, cluster, driverNode, alive);
  await nodeHolding(nats, alive, new RegExp(`^sps-${cluster.id}-driver$`));
  const workerNode = await nodeHolding(nats, alive, new RegExp(`^sps-${cluster.id}-p\\d+-a\\d+$`));
  await killAndRecover(t, cluster, workerNode, alive);

  await load.stop();
  t.log(`requests under load: ${load.ok} answered, failed: ${JSON.stringify(Object.fromEntries(load.failed))}`);
  t.true(load.ok > 0);
  // A request sent while its sender or its partition reconnects fails with a code of its own, never hangs.
  for (const code of load.failed.keys()) t.true(['SPS_REQUEST_TIMEOUT', 'SPS_NO_RESPONDER'].includes(code), `unexpected failure ${code}`);
  t.deepEqual(await cluster.requestAll<number>('sum'), expected, 'every partition answers as before');
  t.deepEqual(
    cluster.members.map((m) => m.pid),
    pids,
    'no partition was restarted',
  );
  await cluster.stop();
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1, 2], 'every result arrived');
});
