import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { createConnection } from 'node:net';
import { decode, encode } from '../src/protocol/codec.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { blockOf } from '../src/worker/collectives/layout.js';
import { LARGE_LENGTH, largeValue } from './fixtures/collective-server.js';
import { sharedNats, waitUntil } from './helpers/harness.js';
import { startNatsServer } from '../src/transport/nats-server.js';
import { withCluster } from './helpers/with-cluster.js';

const SERVER = new URL('./fixtures/collective-server.ts', import.meta.url);
const nats = sharedNats();
test.after.always(() => nats.stop());

type Outcome = { ok: boolean; value?: Record<string, unknown>; code?: string; message?: string; missing?: number[]; partitions?: number[] };

/** What partition `p` of `n` must have got from the suite, computed from the definitions, not from a run. */
function expectedSuite(n: number, p: number, rows: number[], large: boolean) {
  const range = Array.from({ length: n }, (_, i) => i);
  const sumP = range.reduce((a, b) => a + b, 0);
  const kinds: Record<string, unknown[]> = {};
  for (const K of [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array]) {
    kinds[K.name] = [K.name, ...Array.from(new K([sumP + n, 2 * n]))];
  }
  kinds.BigInt64Array = ['BigInt64Array', '0', '-1'];
  kinds.BigUint64Array = ['BigUint64Array', String(n)];
  const rs = blockOf(7, n, p);
  const rsFull = Array.from({ length: 7 }, (_, i) => n * i + sumP);
  const rsc = blockOf(6, n, p);
  const factor = (n * (n + 1)) / 2;
  const small = {
    broadcast: { from: n - 1, list: [1, 2, 3] },
    gather: p === 0 ? range.map((q) => q * 10) : null,
    allGather: range.map((q) => `v${q}`),
    sum: sumP + n,
    prod: range.reduce((a, q) => a * (q + 1), 1),
    min: 1,
    max: n,
    bigint: String(range.reduce((a, q) => a + BigInt(q + 1) * 10n ** 15n, 0n)),
    array: [sumP, 2 * sumP, 3 * sumP],
    kinds,
    rows: { count: rows.length, sum: rows.reduce((a, b) => a + b, 0) },
    reduceScatter: ['Int32Array', ...rsFull.slice(rs.start, rs.end)],
    reduceScatterCustom: Array.from({ length: rsc.end - rsc.start }, () => n - 1),
    smallInPlace: [true, sumP + n, 2 * n],
    inPlaceOfNumber: 'SPS_COLLECTIVE_ARGUMENT',
    generation: 0,
    stats: { generation: 0, stale: 0, malformed: 0, overflow: 0, refusedSockets: 0, heldChunks: 0, heldBytes: 0 },
  };
  if (!large) return small;
  return {
    ...small,
    large: {
      kind: 'Float32Array',
      length: LARGE_LENGTH,
      wrong: 0,
      sample: [largeValue(0, 0) * factor, largeValue(0, 999) * factor, largeValue(0, LARGE_LENGTH - 1) * factor],
    },
    ring: { kind: 'Float32Array', same: true },
    largeInPlace: [
      { algorithm: 'direct', sameArray: true, same: true },
      { algorithm: 'ring', sameArray: true, same: true },
    ],
    largeBroadcast: { length: 3 * 1024 * 1024, wrong: 0 },
    largeAllGather: range.map((q) => [1_200_000, String(q)]),
    inARow: 100,
  };
}

/** The cluster default transport each size of the suite runs with: both paths, and the automatic choice, on large values. */
const SUITE_TRANSPORT = { 1: 'auto', 2: 'auto', 3: 'direct', 4: 'auto', 5: 'nats' } as const;

test.serial('every collective on 1 to 5 partitions (empty ones included) over the secured bus: values, typed arrays, custom ops, > max_payload', async (t) => {
  const rows = [11, 22, 33];
  for (let n = 1; n <= 5; n++) {
    // The private nats-server: partitions speak with their own credentials and subject permissions.
    const transport = SUITE_TRANSPORT[n as keyof typeof SUITE_TRANSPORT];
    await withCluster(t, { server: SERVER, data: rows, partitions: n, log: false, collectiveTransport: transport }, async (cluster) => {
      // Values of several MB (chunked, the reduce-scatter path, 100 calls in a row) on a power of two and a non-power of two.
      const large = n === 2 || n === 5;
      const replies = await cluster.requestAll<Outcome>('suite', large, { timeoutMs: 120_000 });
      for (const [p, r] of replies) {
        if (!r.ok) t.fail(`partition ${p} of ${n}: ${r.error.message}`);
        else if (!r.value.ok) t.fail(`partition ${p} of ${n}: [${r.value.code}] ${r.value.message}`);
        else {
          // Whether bytes went over a direct socket depends on the transport (auto: everything, in groups this small).
          const { directBytesSent, ...stats } = r.value.value!.stats as { directBytesSent: number };
          const direct = n > 1 && transport !== 'nats';
          t.is(directBytesSent > 0, direct, `partition ${p} of ${n} over ${transport}: ${directBytesSent} bytes sent directly`);
          t.deepEqual({ ...r.value.value, stats }, expectedSuite(n, p, rows, large), `partition ${p} of ${n}`);
        }
      }
      // requestAll from inside a partition, as the driver has it.
      // The embedded launcher slices rows as Spark's parallelize does: the same cut as a block.
      const expectedCounts = Array.from({ length: n }, (_, q) => [q, blockOf(rows.length, n, q).end - blockOf(rows.length, n, q).start]);
      t.deepEqual(await cluster.request(n - 1, 'peers'), expectedCounts);
      await cluster.stop();
    });
  }
});

test.serial('a partition killed during an allReduce: the others reject with CollectiveAbortedError naming it, and the next generation computes', async (t) => {
  await withCluster(t, { server: SERVER, data: [1, 2, 3], partitions: 3, log: false }, async (cluster) => {
    // Partitions 0 and 1 enter an allReduce (it answers once the call is under way); 2 never does.
    const generations = await Promise.all([0, 1].map((p) => cluster.request<number>(p, 'start', { id: 'r', call: 'allReduce', timeoutMs: 60_000 })));
    const victim = cluster.members.find((m) => m.partition === 2)!;
    process.kill(victim.pid, 'SIGKILL');
    for (const p of [0, 1]) {
      const o = await cluster.request<Outcome>(p, 'outcome', 'r');
      t.like(o, { ok: false, code: 'SPS_COLLECTIVE_ABORTED', partitions: [2] }, `partition ${p}`);
      t.regex(o.message!, /allReduce-chunked aborted \(generation \d+\): partition\(s\) 2 failed or were replaced/);
    }
    // The launcher brings partition 2 back (attempt 1); collectives then run in a higher generation.
    await waitUntil(() => cluster.members.every((m) => m.state === 'serving') && cluster.members[2]!.attempt === 1, 30_000, 'partition 2 serving again');
    const sums = await cluster.requestAll<Outcome>('allReduce', 5);
    t.deepEqual(
      [...sums.values()].map((r) => (r.ok ? r.value : r.error.message)),
      [0, 1, 2].map(() => ({ ok: true, value: 15 })),
    );
    const stats = await cluster.requestAll<{ generation: number }>('stats');
    for (const [p, r] of stats) t.true(r.ok && r.value.generation > Math.max(...generations), `partition ${p} in a new generation`);
  });
});

test.serial('stale, forged and malformed collective messages are dropped and counted; mismatched calls and missing partitions are named', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: SERVER, data: [1, 2, 3], partitions: 3, natsUrl: server.url, log: false }, async (cluster) => {
    const sum = async (v: number) => [...(await cluster.requestAll<Outcome>('allReduce', v)).values()].map((r) => (r.ok ? r.value : r.error.message));
    t.deepEqual(
      await sum(1),
      [0, 1, 2].map(() => ({ ok: true, value: 3 })),
    );

    // On an open bus (natsUrl without permissions) anyone can publish as partition 1 to partition 0.
    const bus = await connect({ servers: server.url });
    t.teardown(() => bus.close());
    const s = subjectsFor(cluster.id!);
    const forged = { g: 0, s: 1, a: 0, op: 'allReduce', tag: 0, c: 0, n: 1, o: 0, len: 1, d: new Uint8Array([0x05]) };
    bus.publish(s.coll(0, 1), new Uint8Array([1, 2, 3])); // not msgpack
    bus.publish(s.coll(0, 9), encode('coll', forged)); // no such partition
    bus.publish(s.coll(0, 1), encode('coll', { ...forged, s: 0 })); // a call that is over
    bus.publish(s.coll(0, 1), encode('coll', { ...forged, a: 4 })); // an attempt that is not the member
    await bus.flush();
    const before = (await cluster.request<{ stale: number; malformed: number }>(0, 'stats'))!;
    t.deepEqual([before.malformed, before.stale], [2, 2]);
    t.deepEqual(
      await sum(2),
      [0, 1, 2].map(() => ({ ok: true, value: 6 })),
      'nothing forged was mixed in',
    );

    // Partitions that call different collectives at the same step are told so, naming each other.
    await cluster.request(0, 'start', { id: 'm', call: 'barrier' });
    await cluster.request(1, 'start', { id: 'm', call: 'allGather' });
    await cluster.request(2, 'start', { id: 'm', call: 'barrier' });
    const m1 = await cluster.request<Outcome>(1, 'outcome', 'm');
    t.like(m1, { ok: false, code: 'SPS_COLLECTIVE_MISMATCH' });
    t.regex(m1.message!, /partition [02] called barrier as call 2 of generation 0, where partition 1 called allGather/);
    t.like(await cluster.request<Outcome>(0, 'outcome', 'm'), { ok: false, code: 'SPS_COLLECTIVE_MISMATCH' });

    // A partition that never calls: the timeout names it.
    await cluster.request(0, 'start', { id: 't', call: 'barrier', timeoutMs: 1500 });
    await cluster.request(1, 'start', { id: 't', call: 'barrier', timeoutMs: 1500 });
    for (const p of [0, 1]) {
      const o = await cluster.request<Outcome>(p, 'outcome', 't');
      t.like(o, { ok: false, code: 'SPS_COLLECTIVE_TIMEOUT', missing: [2] });
      t.regex(o.message!, /barrier did not complete within 1500 ms: partition\(s\) 2 never arrived/);
    }

    // An AbortSignal ends a pending call with its reason.
    await cluster.request(0, 'start', { id: 'a', call: 'abort' });
    t.like(await cluster.request<Outcome>(0, 'outcome', 'a'), { ok: false, code: 'TEST_ABORTED', message: 'given up by the caller' });
  });
});

test.serial('a 64 MB allReduce per partition completes over NATS (flow control under the slow-consumer limit) and over direct sockets', async (t) => {
  // A server that cuts a client once it holds 24 MB for it: 2 senders × the 4 MB window fit, a 64 MB burst does not.
  const server = await startNatsServer({ maxPendingBytes: 24 * 1024 * 1024 });
  t.teardown(() => server.stop());
  await withCluster(t, { server: SERVER, data: [1, 2, 3], partitions: 3, natsUrl: server.url, log: false }, async (cluster) => {
    for (const transport of ['nats', 'direct'] as const) {
      const replies = await cluster.requestAll<Outcome>('huge', { mb: 64, transport }, { timeoutMs: 180_000 });
      for (const [p, r] of replies) {
        t.deepEqual(
          r.ok ? r.value : r.error,
          { ok: true, value: { length: 16 * 1024 * 1024, wrong: 0, direct: transport === 'direct' } },
          `${transport}, partition ${p}`,
        );
      }
    }
  });
});

/** Opens a socket to a partition's direct port, writes `bytes`, and resolves with what came back once the partition closed it. */
function probe(host: string, port: number, bytes: Uint8Array): Promise<{ closed: boolean; received: number }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port }, () => socket.write(bytes));
    let received = 0;
    socket.on('data', (d) => (received += d.length));
    socket.on('error', reject);
    socket.on('close', () => resolve({ closed: true, received }));
  });
}

test.serial('the direct socket: a stranger, garbage and a replayed ticket are closed with nothing sent back; tickets only for members', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: SERVER, data: [1, 2], partitions: 2, natsUrl: server.url, log: false }, async (cluster) => {
    const target = cluster.members.find((m) => m.partition === 0)!;
    const caller = cluster.members.find((m) => m.partition === 1)!;
    t.true(Number.isInteger(target.peerPort), 'the direct port is in the membership');
    const port = target.peerPort!;

    // Garbage, and a ticket that was never given (the right length): closed, nothing back.
    for (const bytes of [new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'.repeat(4)), new Uint8Array(32).fill(7)]) {
      const r = await probe(target.host, port, bytes);
      t.deepEqual([r.closed, r.received], [true, 0]);
    }

    // On an open bus (natsUrl without permissions) anyone may ask as partition 1: the ticket is then one-time.
    const bus = await connect({ servers: server.url });
    t.teardown(() => bus.close());
    const s = subjectsFor(cluster.id!);
    const { generation } = (await cluster.request<{ generation: number }>(0, 'stats'))!;
    const ask = async (a: number) => decode('r', (await bus.request(s.coll(0, 1), encode('coll-ticket-get', { g: generation, a }))).data, ['coll-ticket']);
    t.regex((await ask(caller.attempt + 3)).reason!, /attempt \d+ of partition 1 is not a member/);
    const { ticket } = await ask(caller.attempt);
    t.regex(ticket!, /^[0-9a-f]{64}$/);
    const first = createConnection({ host: target.host, port });
    t.teardown(() => first.destroy());
    await new Promise<void>((resolve) => first.once('connect', resolve));
    first.write(Buffer.from(ticket!, 'hex'));
    const replay = await probe(target.host, port, Buffer.from(ticket!, 'hex'));
    t.deepEqual([replay.closed, replay.received], [true, 0], 'a replayed ticket is refused');
    const stats = (await cluster.request<{ refusedSockets: number }>(0, 'stats'))!;
    t.is(stats.refusedSockets, 3);
    t.false(first.destroyed, 'the first use of the ticket was accepted');
    // Collectives still compute over the direct path after all that.
    const sums = await cluster.requestAll<Outcome>('huge', { mb: 1, transport: 'direct' });
    for (const [p, r] of sums) t.deepEqual(r.ok ? r.value : r.error, { ok: true, value: { length: 262_144, wrong: 0, direct: true } }, `partition ${p}`);
  });
});

test.serial("on a TLS bus, 'auto' sends collective data over the direct sockets (TLS there too), as does 'direct'; 'nats' keeps it on the bus", async (t) => {
  await withCluster(t, { server: SERVER, data: [1, 2, 3], partitions: 3, log: false, tls: true }, async (cluster) => {
    t.regex(cluster.natsUrl!, /^tls:\/\//);
    for (const [p, r] of await cluster.requestAll<Outcome>('allReduce', 2)) t.deepEqual(r.ok ? r.value : r.error, { ok: true, value: 6 }, `partition ${p}`);
    for (const transport of ['nats', undefined, 'direct'] as const) {
      const sums = await cluster.requestAll<Outcome>('huge', { mb: 1, transport });
      for (const [p, r] of sums) {
        t.deepEqual(
          r.ok ? r.value : r.error,
          { ok: true, value: { length: 262_144, wrong: 0, direct: transport !== 'nats' } },
          `partition ${p}, ${transport ?? 'auto'}`,
        );
      }
    }
    for (const [p, r] of await cluster.requestAll<{ refusedSockets: number }>('stats')) t.is(r.ok && r.value.refusedSockets, 0, `partition ${p}`);
  });
});
