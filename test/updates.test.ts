/**
 * Live updates (option `updates`) against a real nats-server with JetStream and real workers: an
 * outside publisher's updates reach the partition owning each key, in order, exactly once — also
 * across an attempt SIGKILLed mid-storm — and a poison update goes to the dead letters.
 */
import test, { type ExecutionContext } from 'ava';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Cluster, InvalidOptionError, partitionOfKey, type PartitionReply, type PublishAck } from '../src/index.js';
import { connectBus, type NatsConnection } from '../src/transport/bus.js';
import { startNatsServer } from '../src/transport/nats-server.js';
import { connect } from '@nats-io/transport-node';
import { TEST_SERVER, waitUntil } from './helpers/harness.js';
import type { AmountRow } from './fixtures/updates-server.js';
import { testCluster } from './helpers/with-cluster.js';

const UPDATES_SERVER = new URL('./fixtures/updates-server.ts', import.meta.url);
const KEYS = 50;
const ROUNDS = 200; // 10,000 updates: one per key per round
const PARTITIONS = 3;

interface Entry {
  amount: number;
  updates: number;
  lastI: number;
}
interface State {
  view: Record<string, Entry>;
  status: { lastSeq: number; applied: number; failed: number; pending: number } | undefined;
  outOfOrder: number;
  attempt: number;
}

const key = (k: number): string => `k${k}`;
const amountOf = (round: number, k: number): number => ((round * 7 + k * 13) % 101) - 50;

/** Every partition's state, or undefined while one cannot answer (an attempt being replaced). */
function states(replies: Map<number, PartitionReply<State>>): State[] | undefined {
  const sorted = [...replies.entries()].sort(([a], [b]) => a - b);
  if (sorted.some(([, r]) => !r.ok)) return undefined;
  return sorted.map(([, r]) => (r as { ok: true; value: State }).value);
}

/** Starts `cluster`, stopping it at the test's end; `connect` opens a bus connection with its credentials, closed first. */
async function started(t: ExecutionContext, cluster: Cluster<AmountRow>): Promise<(role: 'client' | 'publisher') => Promise<NatsConnection>> {
  const conns: NatsConnection[] = [];
  t.teardown(async () => {
    for (const nc of conns) await nc.close().catch(() => {});
    await cluster.stop().catch(() => {});
  });
  await cluster.start();
  return async (role) => {
    const nc = await connectBus(cluster.credentials(role), `test-${role}`);
    conns.push(nc);
    return nc;
  };
}

test('10,000 updates from an outside publisher, one worker SIGKILLed mid-storm: every partition equals a single-process replay', async (t) => {
  t.timeout(300_000);
  const rows: AmountRow[] = Array.from({ length: KEYS }, (_, k) => ({ id: key(k), amount: 1000 + k }));
  const cluster = new Cluster<AmountRow>({
    server: UPDATES_SERVER,
    data: rows,
    partitions: PARTITIONS,
    partitionBy: 'id',
    updates: 'orders.*',
    maxFailures: 3,
    log: false,
  });
  const connect = await started(t, cluster);
  const js = jetstream(await connect('publisher'));
  const victim = cluster.members[1]!;
  for (let round = 0; round < ROUNDS; round++) {
    // One update per key per round, rounds one after another: each key's updates are stored in order.
    await Promise.all(Array.from({ length: KEYS }, (_, k) => js.publish(`orders.${key(k)}`, JSON.stringify({ op: 'add', n: amountOf(round, k), i: round }))));
    if (round === ROUNDS / 2) process.kill(victim.pid, 'SIGKILL');
  }
  // A poison update of each kind, for one key: not JSON, and one the handler throws on.
  const poisonKey = key(7);
  const poisoned = partitionOfKey(poisonKey, PARTITIONS);
  await js.publish(`orders.${poisonKey}`, 'not json {');
  await js.publish(`orders.${poisonKey}`, JSON.stringify({ op: 'boom', n: 0, i: -1 }));

  // The single-process replay.
  const expected = new Map(rows.map((r) => [r.id, { amount: r.amount, updates: 0, lastI: -1 }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < KEYS; k++) {
      const e = expected.get(key(k))!;
      expected.set(key(k), { amount: e.amount + amountOf(round, k), updates: e.updates + 1, lastI: round });
    }
  }
  const perPartition = Array.from({ length: PARTITIONS }, (_, p) => [...expected.keys()].filter((k) => partitionOfKey(k, PARTITIONS) === p).length * ROUNDS);

  let last: State[] = [];
  await waitUntil(
    async () => {
      const now = states(await cluster.requestAll<State>('state'));
      if (now === undefined) return false;
      last = now;
      return last.every(
        (s, p) => s.status !== undefined && s.status.pending === 0 && s.status.applied + s.status.failed === perPartition[p]! + (p === poisoned ? 2 : 0),
      );
    },
    240_000,
    'every partition to apply its updates',
  );
  t.true(last[1]!.attempt > 0, 'partition 1 was retried');
  for (const [p, s] of last.entries()) {
    t.is(s.outOfOrder, 0, `partition ${p} saw a key's updates out of order`);
    t.is(s.status!.failed, p === poisoned ? 2 : 0);
    for (const [k, e] of Object.entries(s.view)) {
      t.is(partitionOfKey(k, PARTITIONS), p, `key ${k} reached partition ${p}, not its owner`);
      t.deepEqual(e, expected.get(k), `key ${k} on partition ${p}`);
    }
  }
  t.is(
    last.reduce((n, s) => n + Object.keys(s.view).length, 0),
    KEYS,
  );
  t.is(await cluster.requestByKey<number>(poisonKey, 'get', { key: poisonKey }), expected.get(poisonKey)!.amount, 'the poisoned partition still serves');

  const dead = await cluster.deadLetters();
  t.deepEqual(
    dead.map((d) => [d.partition, d.key, d.code]),
    [
      [poisoned, poisonKey, 'SPS_UPDATE_DECODE'],
      [poisoned, poisonKey, 'SPS_UPDATE_FAILED'],
    ],
  );
  t.is(new TextDecoder().decode(dead[0]!.data), 'not json {');
  t.regex(dead[1]!.error, /this update is poison/);
  await cluster.stop();
});

test('publisher credentials publish updates and nothing else; client credentials cannot publish updates; the dashboard shows each partition’s lag', async (t) => {
  t.timeout(120_000);
  const cluster = new Cluster({ server: UPDATES_SERVER, data: [{ id: 'a', amount: 1 }], partitions: 2, partitionBy: 'id', updates: 'orders.*', log: false });
  const connect = await started(t, cluster);
  const client = await connect('client');
  const pub = await connect('publisher');
  await t.throwsAsync(jetstream(client).publish('orders.a', '{"op":"add","n":1,"i":0}', { timeout: 30_000 }), { message: /[Pp]ermission/ });
  await t.throwsAsync(pub.request(`sps.${cluster.id}.p.0.0.state`, '', { timeout: 30_000 }), { message: /[Pp]ermission/ });
  await t.throwsAsync(jetstream(pub).publish('other.a', '{}', { timeout: 30_000 }), { message: /[Pp]ermission/ });
  const ack = await jetstream(pub).publish('orders.a', JSON.stringify({ op: 'add', n: 41, i: 0 }));
  t.true(ack.seq > 0);
  await waitUntil(async () => (await cluster.requestByKey<number>('a', 'get', { key: 'a' })) === 42, 60_000, 'the update to be applied');

  // The dashboard shows each partition's lag, as the stream counts it.
  const dashboard = await cluster.dashboard();
  const owner = cluster.partitionOf('a');
  let rows: { partition: number; updates?: { pending: number; appliedSeq: number } }[] = [];
  await waitUntil(
    async () => {
      const res = await fetch(`http://${dashboard.host}:${dashboard.port}/snapshot`, { headers: { authorization: `Bearer ${cluster.token!}` } });
      rows = ((await res.json()) as { partitions: typeof rows }).partitions;
      return rows.every((r) => r.updates !== undefined);
    },
    60_000,
    'the dashboard to show every partition’s updates',
  );
  t.deepEqual(
    rows.map((r) => r.updates),
    rows.map((r) => ({ pending: 0, appliedSeq: r.partition === owner ? ack.seq : 0 })),
  );
});

test('options updates and events: a clear error for a bad subject or value, and for a server that applies no updates', async (t) => {
  t.timeout(120_000);
  for (const [updates, why] of [
    ['orders', /exactly one "\*"/],
    ['orders.>', /may not hold ">"/],
    ['sps.x.*', /may not be under sps\./],
    [42, /must be a subject/],
  ] as const) {
    const err = t.throws(() => new Cluster({ server: TEST_SERVER, data: [1], updates: updates as string, log: false }), { instanceOf: InvalidOptionError });
    t.is(err!.option, 'updates');
    t.regex(err!.message, why);
  }
  t.throws(() => new Cluster({ server: TEST_SERVER, data: [1], events: 'yes' as unknown as boolean, log: false }), {
    instanceOf: InvalidOptionError,
    message: /events.*true or false/,
  });
  const cluster = testCluster(t, { server: TEST_SERVER, data: [1, 2], partitions: 2, updates: 'orders.*', log: false });
  const err = await t.throwsAsync(cluster.start());
  t.regex(err!.message, /SPS_NO_UPDATE_HANDLER|neither an onUpdate method nor an update option/);
});

test('events: ctx.publish stores under the partition’s own number, once per msgId, and a client reads them; no partition can read or forge another’s updates or events', async (t) => {
  t.timeout(120_000);
  const rows: AmountRow[] = Array.from({ length: 6 }, (_, k) => ({ id: key(k), amount: k }));
  const cluster = new Cluster<AmountRow>({
    server: UPDATES_SERVER,
    data: rows,
    partitions: PARTITIONS,
    partitionBy: 'id',
    updates: 'orders.*',
    events: true,
    log: false,
  });
  const connect = await started(t, cluster);
  const N = 5;
  const acks = await cluster.requestAll<PublishAck[]>('emit', { n: N, twice: true }, { timeoutMs: 120_000 });
  for (const [p, r] of acks) {
    if (!r.ok) return t.fail(`partition ${p}: ${r.error.message}`);
    t.deepEqual(
      r.value.map((a) => a.duplicate),
      Array.from({ length: 2 * N }, (_, i) => i % 2 === 1),
      `partition ${p}: the second publish of each msgId is a duplicate`,
    );
  }

  const client = await connect('client');
  const consumer = await jetstream(client).consumers.get(`SPS_${cluster.id}_EVT`);
  const seen: { subject: string; body: { p: number; i: number }; header: string | undefined }[] = [];
  while (seen.length < PARTITIONS * N) {
    const batch = await consumer.fetch({ max_messages: PARTITIONS * N - seen.length, expires: 30_000 });
    for await (const m of batch) seen.push({ subject: m.subject, body: m.json(), header: m.headers?.get('Sps-Test') });
  }
  for (let p = 0; p < PARTITIONS; p++) {
    const mine = seen.filter((e) => e.subject.startsWith(`sps.${cluster.id}.evt.${p}.`));
    t.deepEqual(
      mine.map((e) => [e.subject, e.body, e.header]),
      Array.from({ length: N }, (_, i) => [`sps.${cluster.id}.evt.${p}.tick.${i}`, { p, i }, 'yes']),
    );
  }
  await t.throwsAsync(jetstream(client).publish(`sps.${cluster.id}.evt.0.forged`, 'x', { timeout: 30_000 }), { message: /[Pp]ermission/ });

  const hostile = await cluster.requestAll<Record<string, string>>('hostile', {}, { timeoutMs: 180_000 });
  for (const [p, r] of hostile) {
    if (!r.ok) return t.fail(`partition ${p}: ${r.error.message}`);
    const { badSubject, ...refused } = r.value;
    for (const [what, answer] of Object.entries(refused)) t.regex(answer!, /[Pp]ermission/, `partition ${p}: ${what}`);
    t.regex(badSubject!, /without "\*", ">" or spaces/);
  }
  // The refused attempts changed nothing: every partition still applies its own updates.
  await jetstream(await connect('publisher')).publish(`orders.${key(3)}`, JSON.stringify({ op: 'add', n: 100, i: 0 }));
  await waitUntil(async () => (await cluster.requestByKey<number>(key(3), 'get', { key: key(3) })) === 103, 60_000, 'the update to be applied');
});

test('on a NATS server you run (natsUrl): the run makes its streams there, updates reach their owners, events are stored, and stop() deletes the streams; without JetStream, start() says so', async (t) => {
  t.timeout(180_000);
  const nats = await startNatsServer({ jetstream: { maxFileBytes: 8 * 1024 ** 3, maxMemoryBytes: 64 * 1024 ** 2 } });
  const plain = await startNatsServer();
  const conns: NatsConnection[] = [];
  const rows: AmountRow[] = Array.from({ length: 8 }, (_, k) => ({ id: key(k), amount: k }));
  const cluster = new Cluster<AmountRow>({
    server: UPDATES_SERVER,
    data: rows,
    partitions: 2,
    partitionBy: 'id',
    updates: 'orders.*',
    events: true,
    natsUrl: nats.url,
    log: false,
  });
  const without = new Cluster<AmountRow>({
    server: UPDATES_SERVER,
    data: rows,
    partitions: 2,
    partitionBy: 'id',
    updates: 'orders.*',
    natsUrl: plain.url,
    log: false,
  });
  t.teardown(async () => {
    for (const nc of conns) await nc.close().catch(() => {});
    await cluster.stop().catch(() => {});
    await without.stop().catch(() => {});
    await nats.stop();
    await plain.stop();
  });
  await cluster.start();
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  for (let k = 0; k < 8; k++) await jetstream(nc).publish(`orders.${key(k)}`, JSON.stringify({ op: 'add', n: 100, i: 0 }));
  for (let k = 0; k < 8; k++) {
    await waitUntil(async () => (await cluster.requestByKey<number>(key(k), 'get', { key: key(k) })) === 100 + k, 60_000, `update of ${key(k)}`);
  }
  const acks = await cluster.requestAll<PublishAck[]>('emit', { n: 2 }, { timeoutMs: 120_000 });
  t.true([...acks.values()].every((r) => r.ok && r.value.length === 2));
  const jsm = await jetstreamManager(nc);
  const id = cluster.id!;
  t.is((await jsm.streams.info(`SPS_${id}_EVT`)).state.messages, 4);
  await cluster.stop();
  for (const name of [`SPS_${id}_UPD`, `SPS_${id}_EVT`]) await t.throwsAsync(jsm.streams.info(name), { message: /stream not found/ });

  const err = await t.throwsAsync(without.start());
  t.regex(err!.message, /SPS_NO_JETSTREAM|needs JetStream/);
});
