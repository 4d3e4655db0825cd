/**
 * A 3-node nats-server cluster (real processes, routes on loopback) as the run's bus (`natsUrl` as a
 * list): the node the driver is connected to, then one a worker is connected to, are SIGKILLed under
 * request load; every client fails over, every partition answers again, and every result arrives once.
 * With `natsAccount`, the run's own identities (user JWTs of the account's signing key) hold on the
 * cluster as on the private server.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Cluster, RequestError } from '../src/index.js';
import { encode } from '../src/protocol/codec.js';
import { decodeReply, encodeRequest } from '../src/protocol/messages.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { makeNatsAccountSetup, userCreds } from '../src/security/nats-accounts.js';
import { NATS_CONFIG_FILES } from '../src/cli/credentials-command.js';
import { nkeyUser } from '../src/security/credentials.js';
import { connectBus } from '../src/transport/bus.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { as } from './helpers/bus-identity.js';
import { assertBuiltCliFresh, BUILT_CLI } from './helpers/built-cli.js';
import { startNatsCluster, withNodeProblems, type NatsClusterProcess } from './helpers/nats-cluster.js';
import type { NatsServerOptions, NatsServerProcess } from '../src/transport/nats-server.js';
import { TEST_SERVER, waitUntil } from './helpers/harness.js';
import { testCluster } from './helpers/with-cluster.js';

const run = promisify(execFile);
const UPDATES_SERVER = new URL('./fixtures/updates-server.ts', import.meta.url);
test.before(() => assertBuiltCliFresh());

/** Names of the client connections a node holds (its monitoring endpoint's `/connz`). */
async function connectionNames(node: NatsServerProcess): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/connz?limit=4096`);
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).map((c) => c.name ?? '');
}

/** A stream's replication as a node's monitoring endpoint (`/jsz`) reports it. */
async function streamOnCluster(
  node: NatsServerProcess,
  name: string,
): Promise<{ config: { num_replicas: number }; cluster: { leader: string; replicas: unknown[] }; state: { messages: number } }> {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/jsz?accounts=true&streams=true&config=true`);
  const body = (await res.json()) as { account_details?: { stream_detail?: { name: string }[] }[] };
  const found = (body.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((d) => d.name === name);
  if (!found) throw new Error(`no stream ${name} on node ${node.port}`);
  return found as unknown as Awaited<ReturnType<typeof streamOnCluster>>;
}

/** The stream as the first of `nodes` that reports it says (a node's `/jsz` lists a stream once its own replica has caught up). */
async function streamReported(nodes: readonly NatsServerProcess[], name: string): Promise<Awaited<ReturnType<typeof streamOnCluster>>> {
  let found: Awaited<ReturnType<typeof streamOnCluster>> | undefined;
  await waitUntil(
    async () => {
      for (const n of nodes) {
        found = await streamOnCluster(n, name).catch(() => undefined);
        if (found?.cluster?.leader) return true;
      }
      return false;
    },
    60_000,
    `a node to report stream ${name} with its leader`,
  );
  return found!;
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
      const replies = await cluster.requestAll('sum', undefined, { timeoutMs: 250 });
      return [...replies.values()].every((r) => r.ok);
    },
    60_000,
    'every partition answering again',
  );
  const ms = performance.now() - t0;
  t.log(`node ${node.port} killed → every partition answering in ${ms.toFixed(0)} ms`);
  return ms;
}

/**
 * Under request load, kills the node the driver is connected to, then one a worker is connected to;
 * checks every client failed over (same answers, no partition restarted) and every result arrives.
 */
async function survivesNodeLoss(t: ExecutionContext, cluster: Cluster, nats: NatsClusterProcess): Promise<void> {
  await cluster.start();
  t.is(cluster.natsUrl, nats.url, 'every URL is kept');
  const expected = await cluster.requestAll<number>('sum');
  const pids = cluster.members.map((m) => m.pid);
  const alive = new Set(nats.nodes);
  const load = requestLoad(cluster, 3);
  // The nodes die under load: once requests are being answered (on a loaded machine the first ones
  // could still be in flight when the driver's node goes, and then all time out).
  await waitUntil(() => load.ok > 0, 30_000, 'a first request answered under load');

  const driver = new RegExp(`^sps-${cluster.id}-driver$`);
  await killAndRecover(t, cluster, await nodeHolding(nats, alive, driver), alive);
  await nodeHolding(nats, alive, driver);
  const workerNode = await nodeHolding(nats, alive, new RegExp(`^sps-${cluster.id}-p\\d+-a\\d+$`));
  await killAndRecover(t, cluster, workerNode, alive);
  // And go on being answered after both failovers.
  const answered = load.ok;
  await waitUntil(() => load.ok > answered, 30_000, 'a request answered under load after the failovers');

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
}

const DATA = Array.from({ length: 12 }, (_, i) => i + 1);

test.serial('a 3-node cluster as natsUrl (one shared token): killing the driver’s node, then a worker’s, under load loses no result', async (t) => {
  t.timeout(240_000);
  const token = 'cluster-test-token';
  const nats = await startNatsCluster(3, { token, monitor: true });
  t.teardown(() => nats.stop());
  const urls = nats.nodes.map((n) => n.url);
  const cluster = testCluster(t, { server: TEST_SERVER, data: DATA, partitions: 3, natsUrl: urls, natsAuth: { token }, reconnectWindowMs: 60_000, log: false });
  await survivesNodeLoss(t, cluster, nats);
});

/**
 * A cluster trusting a fresh account, set up as a user would: `sps credentials --nats-config DIR`,
 * its include in every node's configuration, its signing key file given to the driver.
 */
async function accountCluster(
  t: ExecutionContext,
  options: Omit<NatsServerOptions, 'cluster' | 'serverName' | 'port'> = {},
): Promise<{ nats: NatsClusterProcess; account: string; signingKeyFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sps-account-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'nats-config');
  const { stdout } = await run(process.execPath, [BUILT_CLI, 'credentials', '--nats-config', config]);
  const account = /^account (A[A-Z2-7]{55})$/m.exec(stdout)![1]!;
  const signingKeyFile = join(config, NATS_CONFIG_FILES.signingKey);
  const seeds = [NATS_CONFIG_FILES.signingKey, NATS_CONFIG_FILES.operatorKey, NATS_CONFIG_FILES.accountKey];
  for (const f of seeds) {
    t.is(statSync(join(config, f)).mode & 0o777, 0o600, `${f} is private`);
    t.false(stdout.includes(readFileSync(join(config, f), 'utf8').trim()), `${f} is not printed`);
  }
  const include = JSON.parse(readFileSync(join(config, NATS_CONFIG_FILES.include), 'utf8')) as Record<string, unknown>;
  t.false(JSON.stringify(include).includes('"S'), 'the include holds no seed');
  const nats = await startNatsCluster(3, { ...options, include, monitor: true });
  t.teardown(() => nats.stop());
  // A JetStream cluster answers its API once it has a meta leader: every node's health check says so.
  if (options.jetstream) {
    const healthy = async (port: number | undefined): Promise<boolean> => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    await waitUntil(async () => (await Promise.all(nats.nodes.map((n) => healthy(n.monitorPort)))).every(Boolean), 60_000, 'JetStream ready on every node');
  }
  return { nats, account, signingKeyFile };
}

test.serial("with natsAccount, the run's identities hold on a cluster: strangers are refused, a partition cannot speak for another, on any node", async (t) => {
  t.timeout(180_000);
  const { nats, account, signingKeyFile } = await accountCluster(t);
  const launcher = await CapturingLauncher.create(DATA, 3);
  const cluster = testCluster(t, { server: TEST_SERVER, partitions: 3, launcher, natsUrl: nats.url, natsAccount: { account, signingKeyFile }, log: false });
  await cluster.start();
  const [n0, n1, n2] = nats.nodes.map((n) => n.url);

  // No credentials, or a user of another account's signing key: refused.
  await t.throwsAsync(connect({ servers: n0!, reconnect: false }), { message: /Authorization Violation/i });
  const other = await makeNatsAccountSetup();
  const stranger = await userCreds(nkeyUser({ publish: { allow: ['>'] }, subscribe: { allow: ['>'] } }, '_INBOX'), 'stranger', other, Date.now() + 60_000);
  await t.throwsAsync(connectBus({ url: n1!, auth: { creds: stranger } }, 'stranger'), { message: /Authorization Violation/i });

  const s = subjectsFor(cluster.id!);
  const plan = launcher.plan!;
  // The driver's view, on one node; the intruder (partition 1's own credentials) on another.
  const watcher = await as({ ...plan.driverBus, url: n0! }, 'watcher');
  t.teardown(() => watcher.nc.close());
  const seen: string[] = [];
  watcher.nc.subscribe(`${s.prefix}.>`, { callback: (_e, m) => void seen.push(m.subject) });
  await watcher.nc.flush();
  const p1 = await as({ ...plan.busFor(1), url: n2! }, 'intruder-p1');
  t.teardown(() => p1.nc.close());
  const forbidden = [s.shutdown, s.members, s.register(0), s.state(0), s.coll(0, 0), s.coll('all', 0), 'sps.other-cluster.ctl.shutdown'];
  for (const subject of forbidden) p1.nc.publish(subject, encode('shutdown', {}));
  const unreadable = [s.endpoints(0, '*'), s.coll(0, '*'), `${s.inbox('driver')}.>`, '>'];
  for (const subject of unreadable) p1.nc.subscribe(subject);
  await p1.nc.flush();
  await waitUntil(() => p1.refused.length >= forbidden.length + unreadable.length, 30_000, 'every violation reported');
  for (const subject of forbidden) t.true(p1.refused.includes(`publish ${subject}`), `publish ${subject} was not refused: ${p1.refused.join('; ')}`);
  for (const subject of unreadable) t.true(p1.refused.includes(`subscription ${subject}`), `subscription ${subject} was not refused`);
  await watcher.nc.flush();
  t.deepEqual(
    seen.filter((x) => forbidden.includes(x)),
    [],
  );
  // What partition 1 may do: call a peer, across nodes.
  t.like(decodeReply('r', (await p1.nc.request(s.endpoint(0, 0, 'sum'), encodeRequest(null), { timeout: 30_000 })).data), { ok: true, body: 10 });
  // Each partition holds only its own user; the client credentials call endpoints on the cluster too.
  const users = [0, 1, 2].map((p) => (plan.busFor(p).auth as { creds: string }).creds.match(/-----BEGIN NATS USER JWT-----\n(\S+)/)![1]);
  t.is(new Set(users).size, 3);
  const client = await connectBus(cluster.credentials('client'), 'client');
  t.teardown(() => client.close());
  t.like(decodeReply('r', (await client.request(s.endpoint(2, 0, 'sum'), encodeRequest(null), { timeout: 30_000 })).data), { ok: true });
  t.deepEqual(
    cluster.members.map((m) => m.state),
    ['serving', 'serving', 'serving'],
  );
  await cluster.stop();
});

test.serial('with natsAccount on a 3-node cluster: killing the driver’s node, then a worker’s, under load loses no result', async (t) => {
  t.timeout(240_000);
  const { nats, account, signingKeyFile } = await accountCluster(t);
  const cluster = new Cluster({
    server: TEST_SERVER,
    data: DATA,
    partitions: 3,
    natsUrl: nats.url,
    natsAccount: { account, signingKeyFile },
    reconnectWindowMs: 60_000,
    log: false,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await survivesNodeLoss(t, cluster, nats);
});

/** A 3-node JetStream cluster with the run's identities, and a cluster (not started) of 2 partitions taking updates `orders.*` for 6 keyed rows. */
async function updatesOnCluster(t: ExecutionContext) {
  const { nats, account, signingKeyFile } = await accountCluster(t, { jetstream: { maxFileBytes: 8 * 1024 ** 3, maxMemoryBytes: 64 * 1024 ** 2 } });
  const rows = Array.from({ length: 6 }, (_, k) => ({ id: `k${k}`, amount: k }));
  const cluster = new Cluster({
    server: UPDATES_SERVER,
    data: rows,
    partitions: 2,
    partitionBy: 'id',
    updates: 'orders.*',
    natsUrl: nats.url,
    natsAccount: { account, signingKeyFile },
    reconnectWindowMs: 60_000,
    log: false,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  return { nats, cluster, rows };
}

/** A publisher with the run's publisher credentials, and the name of the run's updates stream. */
async function publisherOf(t: ExecutionContext, cluster: Cluster) {
  const publisher = await connectBus(cluster.credentials('publisher'), 'publisher');
  t.teardown(() => publisher.close());
  return { stream: `SPS_${cluster.id}_UPD`, js: jetstream(publisher) };
}

test.serial(
  'with live updates on a 3-node JetStream cluster, the run’s streams are replicated (R3) and keep every update and take new ones after their leader’s node is lost',
  async (t) => {
    t.timeout(240_000);
    const { nats, cluster, rows } = await updatesOnCluster(t);
    await withNodeProblems(nats, cluster.start());
    const { stream, js } = await publisherOf(t, cluster);
    const publishAll = async (round: number): Promise<void> => {
      for (const { id } of rows) await js.publish(`orders.${id}`, JSON.stringify({ op: 'add', n: 100, i: round }), { msgID: `${id}-${round}` });
    };
    const amountsAre = async (extra: number): Promise<boolean> => {
      for (const { id, amount } of rows)
        if ((await cluster.requestByKey<number>(id, 'get', { key: id }, { timeoutMs: 1000 }).catch(() => null)) !== amount + extra) return false;
      return true;
    };
    await publishAll(0);
    await waitUntil(() => amountsAre(100), 60_000, 'the first updates applied');

    // The stream's leader and its two replicas, on three nodes (as the nodes' monitoring says).
    const info = await streamReported(nats.nodes, stream);
    t.is(info.config.num_replicas, 3);
    t.is(info.cluster.replicas.length, 2);
    const leader = nats.nodes.find((n) => info.cluster.leader.endsWith(`-n${nats.nodes.indexOf(n)}`))!;
    process.kill(leader.pid, 'SIGKILL');
    await leader.exited;
    // Publishes go on once the stream has a new leader (a publish without one fails, and is retried here with the same id).
    await waitUntil(
      async () =>
        publishAll(1).then(
          () => true,
          () => false,
        ),
      60_000,
      'the stream to take updates again',
    );
    // The stream kept every update, on a new leader among the survivors.
    const survivors = nats.nodes.filter((n) => n !== leader);
    let after = await streamReported(survivors, stream);
    // A survivor may still report the old leader until it hears of the election.
    await waitUntil(
      async () => (after = await streamReported(survivors, stream)).cluster.leader !== info.cluster.leader,
      60_000,
      'the survivors to report a new leader',
    );
    t.not(after.cluster.leader, info.cluster.leader);
    t.is(after.state.messages, 2 * rows.length);
    await cluster.stop();
  },
);

/** The node leading consumer `consumer` of `stream`, as the first node whose `/jsz` reports it says. */
async function consumerLeader(nats: NatsClusterProcess, nodes: readonly NatsServerProcess[], stream: string, consumer: string): Promise<NatsServerProcess> {
  let leader: NatsServerProcess | undefined;
  await waitUntil(
    async () => {
      for (const n of nodes) {
        const res = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz?accounts=true&streams=true&consumers=true&config=true`).catch(() => undefined);
        const body = (await res?.json().catch(() => undefined)) as
          { account_details?: { stream_detail?: { name: string; consumer_detail?: { name: string; cluster?: { leader?: string } }[] }[] }[] } | undefined;
        const found = (body?.account_details ?? [])
          .flatMap((a) => a.stream_detail ?? [])
          .filter((s) => s.name === stream)
          .flatMap((s) => s.consumer_detail ?? [])
          .find((c) => c.name === consumer);
        const name = found?.cluster?.leader;
        leader = name ? nats.nodes.find((x) => name.endsWith(`-n${nats.nodes.indexOf(x)}`)) : undefined;
        if (leader) return true;
      }
      return false;
    },
    60_000,
    `a node to report the leader of consumer ${consumer}`,
  );
  return leader!;
}

test.serial(
  'live updates on a 3-node JetStream cluster: the node leading a partition’s consumer is killed, and every update, before and after, is applied exactly once without restarting the partition',
  async (t) => {
    t.timeout(240_000);
    const { nats, cluster, rows } = await updatesOnCluster(t);
    const failures: string[] = [];
    cluster.on('member', (e) => {
      if (e.kind === 'failed' || e.kind === 'replaced' || e.kind === 'lost') failures.push(`${e.kind} p${e.partition}: ${e.reason ?? ''}`);
    });
    await withNodeProblems(nats, cluster.start());
    const pids = cluster.members.map((m) => m.pid);
    const { stream, js } = await publisherOf(t, cluster);
    const ROUNDS = 4;
    // Round `i` adds 100 to every key; a publish without a stream leader fails and is sent again with the same id.
    const publishRound = async (round: number): Promise<void> => {
      for (const { id } of rows) {
        await waitUntil(
          async () =>
            js.publish(`orders.${id}`, JSON.stringify({ op: 'add', n: 100, i: round }), { msgID: `${id}-${round}`, timeout: 2000 }).then(
              () => true,
              () => false,
            ),
          60_000,
          `update ${id}-${round} stored`,
        );
      }
    };
    type State = { view: Record<string, { amount: number; updates: number }>; outOfOrder: number; attempt: number };
    const appliedOnce = async (rounds: number): Promise<boolean> => {
      for (const { id, amount } of rows) {
        const s = await cluster.requestByKey<State>(id, 'state', undefined, { timeoutMs: 1000 }).catch(() => undefined);
        const e = s?.view[id];
        if (!e || e.updates !== rounds || e.amount !== amount + 100 * rounds) return false;
      }
      return true;
    };
    await publishRound(0);
    await publishRound(1);
    await waitUntil(() => appliedOnce(2), 60_000, 'the first updates applied');

    const partition = cluster.partitionOf('k0');
    const leader = await consumerLeader(nats, nats.nodes, stream, `p${partition}`);
    const t0 = performance.now();
    process.kill(leader.pid, 'SIGKILL');
    await leader.exited;
    for (let round = 2; round < ROUNDS; round++) await publishRound(round);
    await waitUntil(() => appliedOnce(ROUNDS), 60_000, 'every update applied once after the consumer leader’s node was lost').catch(async (err: unknown) => {
      t.log(`failures: ${failures.join(' | ')}`);
      for (let p = 0; p < 2; p++) t.log(JSON.stringify(await cluster.request(p, 'state', undefined, { timeoutMs: 2000 }).catch((e: Error) => e.message)));
      throw err;
    });
    t.log(`consumer p${partition}'s leader killed → every update applied in ${(performance.now() - t0).toFixed(0)} ms`);
    t.deepEqual(failures, [], 'no partition failed (no SPS_UPDATES_LOST)');
    t.deepEqual(
      cluster.members.map((m) => m.pid),
      pids,
      'no partition was restarted',
    );
    for (const { id, amount } of rows) {
      const s = await cluster.requestByKey<State>(id, 'state');
      t.like(s.view[id], { amount: amount + 100 * ROUNDS, updates: ROUNDS }, `key ${id}`);
      t.is(s.outOfOrder, 0);
    }
    await cluster.stop();
  },
);
