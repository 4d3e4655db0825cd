/**
 * Live updates when the bus fails under them: a NATS server the user runs (`natsUrl`, JetStream)
 * restarted mid-storm (its store kept), or the run's private nats-server SIGKILLed and started again
 * by the driver, costs no update and applies none twice;
 * the run's stream deleted mid-run fails every partition at once with a clear error (no retry can
 * replay a stream that is gone), and nothing is left running.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Cluster, PartitionFailedError, partitionOfKey, type ClusterOptions, type PartitionReply } from '../src/index.js';
import { startNatsServer, type NatsServerProcess } from '../src/transport/nats-server.js';
import { connectBus } from '../src/transport/bus.js';
import { isAlive, waitUntil } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';
import type { AmountRow } from './fixtures/updates-server.js';

const UPDATES_SERVER = new URL('./fixtures/updates-server.ts', import.meta.url);
const PARTITIONS = 3;
const KEYS = 30;
const ROUNDS = 40;
const JETSTREAM = { maxFileBytes: 8 * 1024 ** 3, maxMemoryBytes: 64 * 1024 ** 2 };

interface State {
  view: Record<string, { amount: number; updates: number; lastI: number }>;
  status: { lastSeq: number; applied: number; failed: number; pending: number } | undefined;
  outOfOrder: number;
  attempt: number;
}

const key = (k: number): string => `k${k}`;
const amountOf = (round: number, k: number): number => ((round * 5 + k * 11) % 97) - 48;

/**
 * Publishes until the stream acknowledges; the message id makes a retried publish that was in fact
 * stored count once. Resolves with how many times it was sent again (refused or unanswered).
 */
async function publishStored(js: JetStreamClient, subject: string, data: string, msgID: string): Promise<number> {
  for (let tries = 1; ; tries++) {
    try {
      await js.publish(subject, data, { msgID, timeout: 5000 });
      return tries - 1;
    } catch (err) {
      if (tries === 200) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A NATS server as a user runs it: JetStream, its store in `storeDir` (kept across restarts). */
async function userServer(storeDir: string, port?: number): Promise<NatsServerProcess> {
  return startNatsServer({ port, jetstream: { ...JETSTREAM, storeDir } });
}

/**
 * A started run of the updates server on a NATS server the test runs (`servers[0]`; a restart is
 * pushed after it), and an outside connection to it; all of it stopped and removed at the test's end.
 */
async function onUserServer(
  t: ExecutionContext,
  options: Partial<ClusterOptions<AmountRow>>,
): Promise<{ cluster: Cluster<AmountRow>; nc: NatsConnection; servers: NatsServerProcess[]; storeDir: string }> {
  const storeDir = await mkdtemp(join(tmpdir(), 'sps-test-js-'));
  const servers = [await userServer(storeDir)];
  const cluster = new Cluster<AmountRow>({ server: UPDATES_SERVER, updates: 'orders.*', natsUrl: servers[0]!.url, log: false, ...options });
  const nc = await connect({ servers: servers[0]!.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  t.teardown(async () => {
    await nc.close().catch(() => {});
    await cluster.stop().catch(() => {});
    for (const s of servers) await s.stop();
    await rm(storeDir, { recursive: true, force: true });
  });
  await cluster.start();
  return { cluster, nc, servers, storeDir };
}

/**
 * Publishes ROUNDS rounds of one update per key (each stored once, retried through a bus outage),
 * calling `crash` once halfway and awaiting it at the end; resolves with how many publishes were sent again.
 */
async function storm(js: JetStreamClient, crash: () => Promise<void>): Promise<number> {
  let crashed: Promise<void> | undefined;
  let again = 0;
  for (let round = 0; round < ROUNDS; round++) {
    again += await sum(
      Array.from({ length: KEYS }, (_, k) =>
        publishStored(js, `orders.${key(k)}`, JSON.stringify({ op: 'add', n: amountOf(round, k), i: round }), `${round}-${k}`),
      ),
    );
    if (round === ROUNDS / 2) crashed = crash();
  }
  await crashed;
  return again;
}

const sum = async (counts: Promise<number>[]): Promise<number> => (await Promise.all(counts)).reduce((a, b) => a + b, 0);

/** Waits until every partition applied the storm, then checks each key against a single-process replay; resolves with the states. */
async function equalsReplay(t: ExecutionContext, cluster: Cluster<AmountRow>, rows: AmountRow[]): Promise<State[]> {
  const expected = new Map(rows.map((r) => [r.id, { amount: r.amount, updates: 0, lastI: -1 }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < KEYS; k++) {
      const e = expected.get(key(k))!;
      expected.set(key(k), { amount: e.amount + amountOf(round, k), updates: e.updates + 1, lastI: round });
    }
  }
  const perPartition = Array.from({ length: PARTITIONS }, (_, p) => rows.filter((r) => partitionOfKey(r.id, PARTITIONS) === p).length * ROUNDS);
  let last: State[] = [];
  let refused: string[] = [];
  try {
    await waitUntil(
      async () => {
        const replies = [...(await cluster.requestAll<State>('state')).entries()].sort(([a], [b]) => a - b);
        refused = replies.flatMap(([p, r]) => (r.ok ? [] : [`partition ${p}: ${r.error.message}`]));
        if (refused.length > 0) return false;
        last = replies.map(([, r]) => (r as Extract<PartitionReply<State>, { ok: true }>).value);
        return last.every((s, p) => s.status?.pending === 0 && s.status.applied === perPartition[p]);
      },
      240_000,
      'every partition to apply its updates after the restart',
    );
  } finally {
    // What each partition last said: applied short of its share with nothing pending is an update the stream lost.
    for (const [p, s] of last.entries()) t.log(`partition ${p} (attempt ${s.attempt}): ${JSON.stringify(s.status)}, expected ${perPartition[p]} applied`);
    for (const line of refused) t.log(`last refused: ${line}`);
  }
  for (const [p, s] of last.entries()) {
    t.is(s.outOfOrder, 0, `partition ${p} saw a key's updates out of order`);
    t.is(s.status!.failed, 0);
    for (const [k, e] of Object.entries(s.view)) t.deepEqual(e, expected.get(k), `key ${k} on partition ${p}`);
  }
  return last;
}

/** Records failed attempts from now on; the check it returns says none failed and every worker is the one of now. */
function noRestart(t: ExecutionContext, cluster: Cluster<AmountRow>): () => void {
  const failed: string[] = [];
  cluster.on('member', (e) => e.kind === 'failed' && failed.push(`p${e.partition}: ${e.reason ?? ''}`));
  const pids = cluster.members.map((m) => m.pid);
  return () => {
    t.deepEqual(failed, [], 'no partition failed');
    t.deepEqual(
      cluster.members.map((m) => m.pid),
      pids,
      'no partition was restarted',
    );
  };
}

const keyedRows = (): AmountRow[] => Array.from({ length: KEYS }, (_, k) => ({ id: key(k), amount: k }));

test('the NATS server you run restarted mid-storm (store kept): every partition ends equal to a single-process replay, no update lost or applied twice', async (t) => {
  t.timeout(300_000);
  const rows = keyedRows();
  const { cluster, nc, servers, storeDir } = await onUserServer(t, { data: rows, partitions: PARTITIONS, partitionBy: 'id', maxFailures: 3 });
  await storm(jetstream(nc), async () => {
    // A crash and a restart on the same port and store while the publisher goes on.
    const first = servers[0]!;
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    servers.push(await userServer(storeDir, first.port));
  });
  const last = await equalsReplay(t, cluster, rows);
  t.log(`attempts after the restart: ${last.map((s) => s.attempt).join(', ')}`);
  await cluster.stop();
  t.is(cluster.result().size, PARTITIONS);
});

test('the private nats-server SIGKILLed mid-storm: the driver starts it again on its port and store, no partition restarts, every partition equals a single-process replay, and requests are answered again', async (t) => {
  t.timeout(300_000);
  const rows = keyedRows();
  const logged: string[] = [];
  const options: ClusterOptions<AmountRow> = {
    ...{ server: UPDATES_SERVER, updates: 'orders.*', data: rows, partitions: PARTITIONS, partitionBy: 'id', maxFailures: 3 },
    log: (line) => logged.push(line),
  };
  await withCluster<AmountRow, unknown, unknown, void>(t, options, async (cluster) => {
    const attempts = cluster.members.map((m) => m.attempt);
    const url = cluster.natsUrl;
    // The publisher's own reconnect window covers the outage; its refused publishes are retried.
    const nc = await connectBus({ ...cluster.credentials('publisher'), reconnectWindowMs: 120_000 }, 'test-publisher');
    t.teardown(() => nc.close().catch(() => {}));
    const killed = cluster.natsServerPid!;
    const again = await storm(jetstream(nc), async () => {
      process.kill(killed, 'SIGKILL');
      await waitUntil(() => cluster.natsServerPid !== killed && isAlive(cluster.natsServerPid!), 60_000, 'the driver to start its nats-server again');
    });
    t.false(isAlive(killed));
    t.is(cluster.natsUrl, url, 'the same URL');
    t.true(
      logged.some((l) => l.includes(`the run's nats-server (pid ${killed}) exited with SIGKILL; started again on port`)),
      'the driver says it started its nats-server again',
    );
    t.log(`publishes sent again during the outage: ${again}`);
    await equalsReplay(t, cluster, rows);
    t.is(cluster.state, 'running');
    t.deepEqual(
      cluster.members.map((m) => m.attempt),
      attempts,
      'no partition restarted: every worker reconnected',
    );
    t.is(
      await cluster.requestByKey<number>(key(7), 'get', { key: key(7) }),
      (await cluster.request<State>(partitionOfKey(key(7), PARTITIONS), 'state')).view[key(7)]!.amount,
    );
    await cluster.stop();
    t.is(cluster.result().size, PARTITIONS);
  });
});

test('the run’s updates stream deleted mid-run: every partition fails at once with SPS_UPDATES_LOST (not retried), and stop() names it', async (t) => {
  t.timeout(180_000);
  const { cluster, nc } = await onUserServer(t, { data: [{ id: 'a', amount: 1 }], partitions: 2, partitionBy: 'id', maxFailures: 3 });
  const pids = cluster.members.map((m) => m.pid);
  await jetstream(nc).publish('orders.a', JSON.stringify({ op: 'add', n: 1, i: 0 }));
  await waitUntil(async () => (await cluster.requestByKey<number>('a', 'get', { key: 'a' })) === 2, 60_000, 'the first update');
  await (await jetstreamManager(nc)).streams.delete(`SPS_${cluster.id!}_UPD`);
  await waitUntil(() => cluster.state === 'failed', 120_000, 'the cluster to fail');
  const err = await t.throwsAsync(cluster.stop(), { instanceOf: PartitionFailedError });
  t.regex(err!.message, /SPS_UPDATES_LOST|updates stream SPS_\w+_UPD or partition \d's consumer p\d is gone/);
  t.regex(err!.message, /a retry cannot fix, so it was not retried/);
  t.is(err!.failures, 1, 'no retry: a stream that is gone cannot be replayed');
  for (const pid of pids) t.false(isAlive(pid), `worker ${pid} is gone`);
});

test('a partition’s consumer deleted mid-run while the stream remains: it is made again where the partition stood, and every update is applied once without a restart', async (t) => {
  t.timeout(180_000);
  const { cluster, nc } = await onUserServer(t, { data: [{ id: 'a', amount: 1 }], partitions: 2, partitionBy: 'id' });
  const unrestarted = noRestart(t, cluster);
  const js = jetstream(nc);
  const state = (): Promise<State> => cluster.requestByKey<State>('a', 'state');
  for (let i = 0; i < 3; i++) await publishStored(js, 'orders.a', JSON.stringify({ op: 'add', n: 1, i }), `a-${i}`);
  await waitUntil(async () => (await state()).view.a?.updates === 3, 60_000, 'the first updates');
  await (await jetstreamManager(nc)).consumers.delete(`SPS_${cluster.id!}_UPD`, `p${partitionOfKey('a', 2)}`);
  for (let i = 3; i < 6; i++) await publishStored(js, 'orders.a', JSON.stringify({ op: 'add', n: 1, i }), `a-${i}`);
  await waitUntil(async () => (await state()).view.a?.updates === 6, 60_000, 'the updates after the consumer was deleted');
  t.like((await state()).view.a, { amount: 7, updates: 6 });
  t.is((await state()).outOfOrder, 0);
  unrestarted();
});

test('deliveries that never reach the partition (taken by another pull on its consumer) are fetched again: every update applied once, in order, without a restart', async (t) => {
  t.timeout(180_000);
  const { cluster, nc } = await onUserServer(t, { data: [{ id: 'a', amount: 1 }], partitions: 1 });
  const unrestarted = noRestart(t, cluster);
  const js = jetstream(nc);
  const state = (): Promise<State> => cluster.requestByKey<State>('a', 'state');
  let published = 0;
  const publish = async (): Promise<void> => {
    await publishStored(js, 'orders.a', JSON.stringify({ op: 'add', n: published + 1, i: published }), `a-${published}`);
    published++;
  };
  for (let i = 0; i < 3; i++) await publish();
  await waitUntil(async () => (await state()).view.a?.updates === 3, 60_000, 'the first updates');
  // A pull of one update on the partition's consumer, answered to someone else: the server takes turns
  // between waiting pulls, so one of the next updates is delivered there, as a delivery lost on the way.
  const stolen: number[] = [];
  const thief = nc.subscribe(`_INBOX.thief.${cluster.id!}`, {
    callback: (_, m) => {
      if (m.reply?.startsWith('$JS.ACK.')) stolen.push(Number(m.reply.split('.').at(-4)));
    },
  });
  t.teardown(() => thief.unsubscribe());
  nc.publish(`$JS.API.CONSUMER.MSG.NEXT.SPS_${cluster.id!}_UPD.p0`, JSON.stringify({ batch: 1, expires: 120e9 }), { reply: thief.getSubject() });
  await nc.flush();
  while (stolen.length === 0) {
    t.true(published < 50, 'an update was delivered to the other pull');
    await publish();
    await waitUntil(async () => stolen.length > 0 || (await state()).view.a?.updates === published, 60_000, 'the update to be delivered');
  }
  for (let i = 0; i < 3; i++) await publish();
  await waitUntil(async () => (await state()).view.a?.updates === published, 60_000, `every update applied, the one taken (stream sequence ${stolen[0]}) too`);
  const expected = 1 + (published * (published + 1)) / 2;
  t.like((await state()).view.a, { amount: expected, updates: published, lastI: published - 1 });
  t.is((await state()).outOfOrder, 0);
  unrestarted();
});

test('a dead letter that cannot be stored fails the partition with SPS_DEAD_LETTER naming the update and both errors; each retry replays it', async (t) => {
  t.timeout(180_000);
  const { cluster, nc } = await onUserServer(t, { data: [{ id: 'a', amount: 1 }], partitions: 1, maxFailures: 2 });
  // The stream no longer takes dead letters: storing one finds no responder.
  const jsm = await jetstreamManager(nc);
  const name = `SPS_${cluster.id!}_UPD`;
  const info = await jsm.streams.info(name);
  await jsm.streams.update(name, { ...info.config, subjects: ['orders.*'] });
  await jetstream(nc).publish('orders.a', JSON.stringify({ op: 'boom', n: 0, i: 0 }));
  await waitUntil(() => cluster.state === 'failed', 120_000, 'the cluster to fail');
  const err = await t.throwsAsync(cluster.stop(), { instanceOf: PartitionFailedError });
  t.regex(err!.message, /failed 2 time\(s\)/);
  t.regex(
    err!.message,
    /update \d+ \(key "a"\) failed \(\[SPS_UPDATE_FAILED\] onUpdate threw .*this update is poison\) and its dead letter could not be stored/,
  );
});
