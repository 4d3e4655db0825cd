/**
 * Protocol fuzzer: random and mutated messages on every control subject of a running cluster, on
 * the Spark job-event subjects of a Spark run, and as orders to the Spark runner. Only messages the
 * protocol's own decoders refuse are sent (a mutation that stays valid is a legitimate message, not
 * an attack), so every one of them must be refused and counted by its receiver, nothing may crash
 * or change, and the cluster must still answer and stop with every result.
 */
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Cluster, type SparkApplication } from '../src/index.js';
import { decode, encode } from '../src/protocol/codec.js';
import type { MessageType } from '../src/protocol/schema.js';
import {
  decodeMembersDelta,
  decodeRegistration,
  decodeReply,
  decodeRequest,
  decodeShutdown,
  decodeState,
  encodeMembersDelta,
  encodeRegistration,
  encodeRequest,
  encodeShutdown,
  encodeState,
} from '../src/protocol/messages.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { mutate, seededRandom } from './helpers/fuzz.js';
import { sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { SMALL_SPARK_CONF, startApp, testLog } from './helpers/spark-harness.js';
import { testCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

/** The seed of this run: printed, and taken from SPS_FUZZ_SEED to replay a failure. */
const SEED = Number(process.env.SPS_FUZZ_SEED ?? Date.now() % 2 ** 31);

/** True when `check` (a receiver's own decoder) accepts the message. */
function accepted(check: () => unknown): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}

/** Mutations of `valid` that `isValid` refuses, `count` of them. */
function badMessages(rnd: () => number, valid: Uint8Array, isValid: (data: Uint8Array) => boolean, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  while (out.length < count) {
    let m: Uint8Array;
    try {
      m = mutate(rnd, valid);
    } catch {
      continue; // a random value msgpack cannot carry
    }
    if (!isValid(m)) out.push(m);
  }
  return out;
}

/** Collects the replies that come to one inbox. */
function replyInbox(nc: NatsConnection, inbox: string, subject: string) {
  const codes: string[] = [];
  nc.subscribe(inbox, {
    callback: (_err, msg) => {
      const r = decodeReply(subject, msg.data);
      codes.push(r.ok ? 'ok' : r.error.code);
    },
  });
  return codes;
}

test.serial(
  '10,000 malformed messages on every control subject: each is refused and counted, nothing crashes, the cluster answers and stops with every result',
  async (t) => {
    t.log(`fuzz seed ${SEED} (replay with SPS_FUZZ_SEED=${SEED})`);
    const rnd = seededRandom(SEED);
    const server = await nats.get();
    const partitions = 3;
    const cluster = testCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4, 5, 6], partitions, natsUrl: server.url, log: false });
    await cluster.start();
    const before = cluster.members.map((m) => ({ ...m }));
    const s = subjectsFor(cluster.id!);
    const intruder = await connect({ servers: server.url });
    t.teardown(() => intruder.close());

    const reg = encodeRegistration({ attempt: 0, host: '127.0.0.1', port: 1, pid: 1, endpoints: ['sum'], proof: 'ab'.repeat(32) });
    const valid = {
      register: reg,
      state: encodeState({ attempt: 0, state: 'serving', pid: 1 }),
      membersGet: encode('members-get', {}),
      members: encodeMembersDelta({ from: 0, epoch: 1, generation: 0, members: [] }),
      shutdown: encodeShutdown(),
      heartbeat: encode('heartbeat', {}),
      req: encodeRequest(null),
    };
    const per = 10_000 / 10;
    // Per partition: what it must count (members, shutdown and heartbeat reach every partition).
    const partitionCounts = Array.from({ length: partitions }, () => 0);
    let supervisorCount = 0;
    let sent = 0;
    const publish = (subject: string, data: Uint8Array, reply?: string): void => {
      intruder.publish(subject, data, reply ? { reply } : undefined);
      sent++;
    };
    const someP = (): number => Math.floor(rnd() * partitions);
    for (const m of badMessages(rnd, valid.register, (d) => accepted(() => decodeRegistration('x', d, 0)), per)) publish(s.register(someP()), m);
    for (const m of badMessages(rnd, valid.state, (d) => accepted(() => decodeState('x', d)), per)) publish(s.state(someP()), m);
    // Well-formed, but on subjects naming no partition of the cluster.
    for (let i = 0; i < per; i++) {
      const bogus = pick(rnd, [String(partitions), '99', '007', '-1', 'x', '1e0']);
      publish(`${s.prefix}.ctl.${rnd() < 0.5 ? 'state' : 'register'}.${bogus}`, rnd() < 0.5 ? valid.state : reg);
    }
    const membersGetInbox = `${s.prefix}.fuzz.members-get`;
    for (const m of badMessages(rnd, valid.membersGet, (d) => accepted(() => decode('x', d, ['members-get'])), per)) publish(s.membersGet, m, membersGetInbox);
    supervisorCount = 4 * per;
    const broadcast = [
      [s.members, valid.members, (d: Uint8Array) => accepted(() => decodeMembersDelta('x', d))],
      [s.shutdown, valid.shutdown, (d: Uint8Array) => accepted(() => decodeShutdown('x', d))],
      [s.heartbeat, valid.heartbeat, (d: Uint8Array) => accepted(() => decode('x', d, ['heartbeat']))],
    ] as const;
    for (const [subject, v, isValid] of broadcast) {
      for (const m of badMessages(rnd, v, isValid, per)) publish(subject, m);
      for (let p = 0; p < partitions; p++) partitionCounts[p]! += per;
    }
    // Endpoint requests, to every partition's current attempt: each gets an SPS_MALFORMED_MESSAGE reply.
    const endpointInbox = `${s.prefix}.fuzz.replies`;
    const replies = replyInbox(intruder, endpointInbox, endpointInbox);
    const requests = badMessages(rnd, valid.req, (d) => accepted(() => decodeRequest('x', d)), 3 * per);
    for (const m of requests) {
      const p = someP();
      publish(s.endpoint(p, before[p]!.attempt, 'sum'), m, endpointInbox);
      partitionCounts[p]!++;
    }
    t.is(sent, 10_000);
    await intruder.flush();

    await waitUntil(() => cluster.stats.malformed >= supervisorCount, 60_000, `the supervisor counting ${supervisorCount} malformed messages`);
    await waitUntil(() => replies.length >= requests.length, 60_000, `${requests.length} error replies`);
    const health = async (): Promise<number[]> =>
      Promise.all(
        cluster.members.map(async (m) => ((await (await fetch(`http://${m.host}:${m.port}/control/health`)).json()) as { malformed: number }).malformed),
      );
    await waitUntil(async () => (await health()).every((n, p) => n >= partitionCounts[p]!), 60_000, 'every partition counting its malformed messages');

    t.is(cluster.stats.malformed, supervisorCount, 'the supervisor counts each bad message once');
    t.deepEqual(await health(), partitionCounts, 'each partition counts each bad message it got once');
    t.deepEqual(
      replies.filter((c) => c !== 'SPS_MALFORMED_MESSAGE'),
      [],
    );
    t.is(replies.length, requests.length);
    // Nothing changed: the same attempts serve, with the same pids, and answer.
    t.deepEqual(
      cluster.members.map((m) => [m.partition, m.attempt, m.pid, m.state]),
      before.map((m) => [m.partition, m.attempt, m.pid, 'serving']),
    );
    const sums = await cluster.requestAll<number>('sum');
    t.deepEqual(
      [...sums.values()].map((r) => (r.ok ? r.value : r.error.code)),
      [3, 7, 11],
    );
    await cluster.stop();
    t.is(cluster.state, 'stopped');
    t.deepEqual(
      [...cluster.result().values()].map((r) => (r[0] as { sum: number }).sum),
      [3, 7, 11],
    );
  },
);

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}

test.serial('on Spark: malformed job events and runner orders are refused and counted; the job runs on and stops with every result', async (t) => {
  t.timeout(180_000);
  const rnd = seededRandom(SEED + 1);
  const server = await nats.get();
  const app: SparkApplication = await startApp('local[2]', { conf: SMALL_SPARK_CONF });
  t.teardown(() => app.close());
  const lines: string[] = [];
  const cluster = new Cluster({
    server: new URL('./helpers/spark-echo-server.ts', import.meta.url),
    spark: app,
    source: { range: { end: 4 } },
    partitions: 2,
    natsUrl: server.url,
    log: (l) => {
      lines.push(l);
      if (testLog === undefined) process.stderr.write(`${l}\n`);
    },
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const s = subjectsFor(cluster.id!);
  const intruder = await connect({ servers: server.url });
  t.teardown(() => intruder.close());

  // Job events on the run's bus: the driver's Spark launcher refuses each, and logs it.
  const events: [MessageType, Uint8Array][] = [
    ['job_started', encode('job_started', { group: 'g' })],
    ['result', encode('result', { partition: 0, attempt: 0, seq: 0, last: true, records: [] })],
    ['job_finished', encode('job_finished', { partitions: 2, records: 0, dataset: null })],
    ['job_failed', encode('job_failed', { error: 'x', cancelled: false })],
  ];
  const eventsPer = 200;
  for (const [type, v] of events) {
    for (const m of badMessages(rnd, v, (d) => accepted(() => decode('x', d, [type])), eventsPer)) intruder.publish(s.spark(type), m);
  }
  // Cancel on the run's bus, and orders on the application's bus: the runner refuses each with an error reply.
  const cancelInbox = `${s.prefix}.fuzz.cancel`;
  const cancelCodes: string[] = [];
  intruder.subscribe(cancelInbox, {
    callback: (_e, msg) => {
      cancelCodes.push(String((decode('x', msg.data, ['error', 'cancelled']) as { code?: string }).code));
    },
  });
  await intruder.flush();
  const cancels = badMessages(rnd, encode('cancel', {}), (d) => accepted(() => decode('x', d, ['cancel'])), 150);
  for (const m of cancels) intruder.publish(s.spark('cancel'), m, { reply: cancelInbox });
  await intruder.flush();

  // The driver's own connection to the application's bus: only the driver (and the runner) may use it.
  const appNc = (app as unknown as { nc: NatsConnection }).nc;
  const orders: [string, Uint8Array][] = [
    ['status', encode('status', {})],
    ['sql', encode('sql', { statement: 'select 1', limit: 1 })],
    ['dataset', encode('dataset', { id: 'd', op: 'count' })],
    ['submit', encode('submit', { clusterId: 'c', job: 'j' })],
  ];
  const orderCodes: string[] = [];
  for (const [op, v] of orders) {
    for (const m of badMessages(rnd, v, (d) => accepted(() => decode('x', d, [op as MessageType])), 40)) {
      const reply = await appNc.request(`sps.${app.id}.spark.${op}`, m, { timeout: 30_000 });
      orderCodes.push(String((decode('x', reply.data, ['error']) as { code: string }).code));
    }
  }
  t.deepEqual(new Set(orderCodes), new Set(['SPS_MALFORMED_MESSAGE']));
  t.is(orderCodes.length, 160);

  const refused = (): number => lines.filter((l) => / spark\] refused: /.test(l)).length;
  await waitUntil(() => refused() >= events.length * eventsPer, 60_000, 'the launcher refusing every bad job event');
  await waitUntil(() => cancelCodes.length >= cancels.length, 60_000, 'the runner refusing every bad cancel');
  t.is(refused(), events.length * eventsPer);
  t.deepEqual(new Set(cancelCodes), new Set(['SPS_MALFORMED_MESSAGE']));
  t.is(cancelCodes.length, cancels.length);

  t.deepEqual(
    cluster.members.map((m) => [m.attempt, m.state]),
    [
      [0, 'serving'],
      [0, 'serving'],
    ],
  );
  t.deepEqual(await cluster.request(1, 'rows'), [2, 3]);
  await cluster.stop();
  t.is(cluster.state, 'stopped');
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
});
