/**
 * A compromised executor or a local process cannot take down the run. Each case plays the attacker
 * against a real cluster (real nats-server, real worker processes), with what such an attacker
 * holds: one partition's credentials as the run handed them out, or nothing but network access.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import type { InspectionEvent } from 'xstate';
import { Cluster } from '../src/index.js';
import { decode, encode } from '../src/protocol/codec.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { HELD_CHUNK_OVERHEAD, HOLD_CHUNKS, HeldChunks } from '../src/worker/collectives/held-chunks.js';
import { BufferPool } from '../src/worker/collectives/buffer-pool.js';
import { MAX_ACCEPTED_PER_PEER, MAX_WAITING_PER_ADDRESS, MAX_WAITING_SOCKETS, TICKET_BYTES } from '../src/worker/collectives/direct.js';
import { FrameReader, MAX_DATA_BYTES, MAX_HEADER_BYTES } from '../src/worker/collectives/frame-reader.js';
import { LineSplitter, MAX_LINE_CHARS, truncationMark } from '../src/process/output-lines.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { mutate, seededRandom } from './helpers/fuzz.js';
import { TEST_SERVER, waitUntil } from './helpers/harness.js';
import { withCluster, testCluster } from './helpers/with-cluster.js';
import { InspectedAttempts, MAX_INSPECTED_ATTEMPTS } from '../src/driver/inspection.js';

const COLLECTIVE_SERVER = new URL('./fixtures/collective-server.ts', import.meta.url);
const HOSTILE_SERVER = new URL('./fixtures/hostile-server.ts', import.meta.url);

type Stats = { generation: number; stale: number; malformed: number; overflow: number; heldChunks: number; heldBytes: number };
/** The seed of this run's fuzzing: printed, and taken from SPS_FUZZ_SEED to replay a failure. */
const SEED = Number(process.env.SPS_FUZZ_SEED ?? Date.now() % 2 ** 31);

type Outcome = { ok: boolean; value?: unknown; code?: string; message?: string };

/** Resident memory of a process, in MiB (from /proc). */
function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1]);
  return Math.round(kb / 1024);
}

test('bounded: held chunks are bounded in count, the latest needed go first, and more than one generation ahead is dropped', (t) => {
  let overflow = 0;
  const held = new HeldChunks((n) => (overflow += n));
  held.enter(3);
  const chunk = (g: number, s: number, c: number) => ({ from: 0, op: 'x', tag: 0, c, n: HOLD_CHUNKS + 1, o: 0, len: 0, d: new Uint8Array(0), g, s, a: 0 });
  t.false(held.holdAhead(chunk(5, 0, 0)), 'two generations ahead');
  t.is(overflow, 1);
  let kept = 0;
  for (let c = 0; c < HOLD_CHUNKS; c++) if (held.holdAhead(chunk(4, 0, c))) kept++;
  t.is(kept, HOLD_CHUNKS);
  t.deepEqual([held.chunks, held.bytes], [HOLD_CHUNKS, HOLD_CHUNKS * HELD_CHUNK_OVERHEAD], 'empty chunks cost their overhead');
  t.false(held.holdAhead(chunk(4, 0, HOLD_CHUNKS)), 'full');
  t.is(overflow, 2);
  // A chunk of this generation pushes out one of the next; one of a later call pushes out none of an earlier one.
  t.is(held.file(7, 'a', chunk(3, 7, 0)), 'held');
  t.is(held.file(7, 'a', chunk(3, 7, 0)), 'repeat');
  t.is(overflow, 3);
  for (let c = 1; c < HOLD_CHUNKS; c++) held.file(7, `k${c}`, chunk(3, 7, c));
  t.is(held.chunks, HOLD_CHUNKS);
  t.is(held.file(9, 'late', chunk(3, 9, 0)), 'overflow', 'a later call does not push out an earlier one');
  t.is(held.file(2, 'early', chunk(3, 2, 0)), 'held', 'an earlier call pushes out the latest');
  t.is(held.chunks, 1);
  t.truthy(held.take(2, 'early'));
  t.deepEqual([held.chunks, held.bytes], [0, 0]);

  // Before its first generation a partition holds any; entering one replays its own, keeps the next, drops the rest (counted).
  const fresh = new HeldChunks((n) => (overflow += n));
  for (const g of [9, 3, 4]) t.true(fresh.holdAhead(chunk(g, 0, 0)));
  const dropped = overflow;
  t.deepEqual(
    fresh.enter(3).map((h) => h.g),
    [3],
  );
  t.deepEqual([fresh.chunks, overflow - dropped], [1, 1]);
});

test.serial('bounded: a collective flood with one partition’s credentials is dropped and counted, the peer stays bounded and keeps computing', async (t) => {
  const launcher = await CapturingLauncher.create([1, 2, 3], 3);
  await withCluster(t, { server: COLLECTIVE_SERVER, partitions: 3, launcher, log: false }, async (cluster) => {
    const s = subjectsFor(cluster.id!);
    const stats = async (): Promise<Stats> => (await cluster.request<Stats>(1, 'stats'))!;
    const sum = async (): Promise<unknown[]> =>
      [...(await cluster.requestAll<Outcome>('allReduce', 1)).values()].map((r) => (r.ok ? r.value : r.error.message));
    t.deepEqual(
      await sum(),
      [0, 1, 2].map(() => ({ ok: true, value: 3 })),
    );
    const before = await stats();
    const victim = cluster.members.find((m) => m.partition === 1)!;
    const rssBefore = rssMiB(victim.pid);

    // Partition 0's own credentials: the server lets it publish on coll.1.0, and nothing tells its messages from the real ones.
    const attacker = await connectBus(launcher.plan!.busFor(0), 'attacker-p0');
    t.teardown(() => attacker.close());
    const attempt = cluster.members.find((m) => m.partition === 0)!.attempt;
    const coll = (g: number, seq: number, tag: number, c: number) =>
      encode('coll', { g, s: seq, a: attempt, op: 'allReduce', tag, c, n: 2 ** 40, o: 0, len: 0, d: new Uint8Array(0) });
    const far = 20_000;
    const next = HOLD_CHUNKS + 2_000;
    const current = 2_000;
    // Far ahead (as in the report: generation 2^52), then the next generation beyond the bound, then calls of this one not made yet.
    for (let i = 0; i < far; i++) attacker.publish(s.coll(1, 0), coll(2 ** 52, 0, 0, i));
    for (let i = 0; i < next; i++) attacker.publish(s.coll(1, 0), coll(before.generation + 1, 0, 0, i));
    for (let i = 0; i < current; i++) attacker.publish(s.coll(1, 0), coll(before.generation, 900, 255, i));
    await attacker.flush();
    const dropped = far + (next - HOLD_CHUNKS) + current;
    await waitUntil(async () => (await stats()).overflow - before.overflow >= dropped, 120_000, 'partition 1 to take in the flood');
    const after = await stats();
    t.log(
      `partition 1: RSS ${rssBefore} → ${rssMiB(victim.pid)} MiB; held ${after.heldChunks} chunks, ${after.heldBytes} bytes; overflow +${after.overflow - before.overflow}`,
    );
    t.is(after.overflow - before.overflow, dropped, 'every message beyond the bound counted');
    t.is(after.heldChunks, HOLD_CHUNKS, 'held up to the bound, not more');
    t.is(after.heldBytes, HOLD_CHUNKS * HELD_CHUNK_OVERHEAD, 'empty messages cost their overhead');
    t.is(after.generation, before.generation);

    // Still computing: the real calls' chunks push out the flood's, which were for later calls or the next generation.
    t.deepEqual(
      await sum(),
      [0, 1, 2].map(() => ({ ok: true, value: 3 })),
    );
    t.deepEqual(
      cluster.members.map((m) => m.state),
      ['serving', 'serving', 'serving'],
    );
  });
});

test('bounded: output lines are split wherever the pieces are cut, and a long line is cut to the bound and marked', (t) => {
  const text = ['one', '', 'two three', 'y'.repeat(100), 'z'.repeat(25), 'last without newline'].join('\n');
  const want = ['one', '', 'two three', 'y'.repeat(40) + truncationMark(60), 'z'.repeat(25), 'last without newline'];
  // The same lines however the text arrives: whole, character by character, in random pieces (seeded).
  for (const seed of [1, 2, 3]) {
    const rnd = seededRandom(seed);
    const cuts: string[] = [];
    for (let at = 0; at < text.length;) {
      const n = seed === 1 ? text.length : seed === 2 ? 1 : 1 + Math.floor(rnd() * 30);
      cuts.push(text.slice(at, at + n));
      at += n;
    }
    const got: string[] = [];
    const lines = new LineSplitter((l) => got.push(l), 40);
    for (const c of cuts) lines.push(c);
    lines.end();
    t.deepEqual(got, want, `seed ${seed}: ${cuts.length} pieces`);
  }
  // Nothing after the last newline: no empty line at the end.
  const got: string[] = [];
  const lines = new LineSplitter((l) => got.push(l));
  lines.push('a\n');
  lines.end();
  t.deepEqual(got, ['a']);
});

test.serial('bounded: a worker writing 32 MiB without a newline reaches the driver as one cut, marked line, and the next line still comes', async (t) => {
  const output: string[] = [];
  const drop = (): void => {};
  const logger = {
    debug: drop,
    warn: drop,
    error: drop,
    info: (fields: unknown, msg?: string) => {
      if ((fields as { stream?: string }).stream === 'output' && msg !== undefined) output.push(msg);
    },
    child: () => logger,
  };
  await withCluster(t, { server: HOSTILE_SERVER, data: [1, 2], partitions: 1, logger, logLevel: 'info' }, async (cluster) => {
    const heapBefore = process.memoryUsage().heapUsed;
    const mib = 32;
    t.is(await cluster.request(0, 'flood_output', mib, { timeoutMs: 120_000 }), 'written');
    await waitUntil(() => output.includes('flood over'), 60_000, 'the line after the flood');
    const long = output.filter((l) => l.startsWith('xxxx'));
    t.log(`driver heap ${Math.round(heapBefore / 2 ** 20)} → ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MiB`);
    t.deepEqual(
      long.map((l) => l.length),
      [MAX_LINE_CHARS + truncationMark(mib * 2 ** 20 - MAX_LINE_CHARS).length],
    );
    t.true(long[0]!.endsWith(truncationMark(mib * 2 ** 20 - MAX_LINE_CHARS)));
  });
});

/** Open file descriptors of a process. */
function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A socket to host:port once connected, counting into `closed` when it closes (whoever closed it). */
function connected(host: string, port: number, closed: { n: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host, port }, () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
    s.once('close', () => closed.n++);
  });
}

/** A direct-path frame: `[u32 header length][u32 data length][header][data]`, little-endian. */
function frame(header: Uint8Array, announced: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32LE(header.length, 0);
  prefix.writeUInt32LE(announced, 4);
  return Buffer.concat([prefix, header, data]);
}

/** Starts a 3-partition cluster of the hostile server, keeping the credentials it hands out; stopped when the test ends. */
async function hostileCluster(t: import('ava').ExecutionContext): Promise<{ cluster: Cluster; launcher: CapturingLauncher }> {
  const launcher = await CapturingLauncher.create([1, 2, 3], 3);
  const cluster = testCluster(t, { server: HOSTILE_SERVER, partitions: 3, launcher, log: false });
  await cluster.start();
  return { cluster, launcher };
}

/** Every partition's allReduce of 1 (over the direct sockets: 3 partitions send everything directly by default). */
async function sumOfOnes(cluster: Cluster): Promise<unknown[]> {
  return [...(await cluster.requestAll<number>('allReduce', 1, { timeoutMs: 90_000 })).values()].map((r) => (r.ok ? r.value : r.error.message));
}

test.serial(
  'bounded: 1,100 idle sockets on a direct port are pushed out and closed within seconds; the partition keeps its descriptors, HTTP and collectives',
  async (t) => {
    const { cluster } = await hostileCluster(t);
    t.deepEqual(await sumOfOnes(cluster), [3, 3, 3]);
    const victim = cluster.members.find((m) => m.partition === 1)!;
    const fdsBefore = openFds(victim.pid);
    const closed = { n: 0 };
    const flood = 1_100;
    const sockets: Socket[] = [];
    t.teardown(() => sockets.forEach((s) => s.destroy()));
    // No credentials: a local process that can reach the port, as with the worker's open-file limit at 1,024.
    for (let i = 0; i < flood; i++) sockets.push(await connected(victim.host, victim.peerPort!, closed));
    await waitUntil(() => closed.n >= flood - MAX_WAITING_PER_ADDRESS, 60_000, 'all but the newest sockets to be pushed out');
    const fdsDuring = openFds(victim.pid);
    t.log(`partition 1: ${fdsBefore} → ${fdsDuring} open descriptors with ${flood - closed.n} of ${flood} idle sockets still open`);
    t.true(fdsDuring - fdsBefore <= 2 * MAX_WAITING_SOCKETS, `${fdsDuring - fdsBefore} more descriptors`);
    // Serving while the newest wait for their ticket.
    const ping = await fetch(`http://${victim.host}:${victim.port}/app/ping`);
    t.is(await ping.text(), 'pong 1');
    t.deepEqual(await sumOfOnes(cluster), [3, 3, 3]);
    // And the last ones are closed once their wait for a ticket is over.
    await waitUntil(() => closed.n === flood, 60_000, 'every idle socket closed');
    const stats = (await cluster.request<{ refusedSockets: number }>(1, 'stats'))!;
    t.is(stats.refusedSockets, flood, 'every socket without a ticket counted');
  },
);

test.serial(
  'bounded: frames announcing 8 MiB on sockets with valid tickets allocate nothing up front; a peer keeps at most two accepted sockets',
  async (t) => {
    const { cluster, launcher } = await hostileCluster(t);
    t.deepEqual(await sumOfOnes(cluster), [3, 3, 3]);
    const s = subjectsFor(cluster.id!);
    const victim = cluster.members.find((m) => m.partition === 1)!;
    const attempt = cluster.members.find((m) => m.partition === 0)!.attempt;
    const { generation } = (await cluster.request<Stats>(1, 'stats'))!;
    const attacker = await connectBus(launcher.plan!.busFor(0), 'attacker-p0');
    t.teardown(() => attacker.close());
    const memory = async () => (await cluster.request<NodeJS.MemoryUsage>(1, 'memory'))!;
    const before = await memory();
    const closed = { n: 0 };
    const sockets: Socket[] = [];
    t.teardown(() => sockets.forEach((x) => x.destroy()));
    const count = 6;
    const header = encode('coll', {
      g: generation,
      s: 1_000,
      a: attempt,
      op: 'allReduce',
      tag: 0,
      c: 0,
      n: 1,
      o: 0,
      len: MAX_DATA_BYTES,
      d: new Uint8Array(0),
    });
    for (let i = 0; i < count; i++) {
      const reply = await attacker.request(s.coll(1, 0), encode('coll-ticket-get', { g: generation, a: attempt }), { timeout: 30_000 });
      const { ticket } = decode(reply.subject, reply.data, ['coll-ticket']);
      const sock = await connected(victim.host, victim.peerPort!, closed);
      sockets.push(sock);
      // The ticket, then a frame that announces the largest data and sends a little of it.
      sock.write(Buffer.concat([Buffer.from(ticket!, 'hex'), frame(header, MAX_DATA_BYTES, new Uint8Array(1000))]));
    }
    await waitUntil(() => closed.n >= count - MAX_ACCEPTED_PER_PEER, 30_000, 'the oldest accepted sockets to be closed');
    const after = await memory();
    const grown = after.arrayBuffers - before.arrayBuffers;
    t.log(`partition 1: arrayBuffers ${before.arrayBuffers} → ${after.arrayBuffers} bytes with ${count} frames announcing ${MAX_DATA_BYTES} bytes`);
    t.true(grown < MAX_DATA_BYTES, `${grown} bytes more`);
    t.is(closed.n, count - MAX_ACCEPTED_PER_PEER);
    // The real partition 0 opens its socket again (the attacker's pushed it out) and the run computes.
    t.deepEqual(await sumOfOnes(cluster), [3, 3, 3]);
  },
);

test('bounded: fuzzing the frame reader with random and mutated streams (seeded): no throw, no allocation beyond what arrived, clean rejection', (t) => {
  t.log(`fuzz seed ${SEED} (replay with SPS_FUZZ_SEED=${SEED})`);
  const rnd = seededRandom(SEED);
  const valid = encode('coll', { g: 0, s: 0, a: 0, op: 'allReduce', tag: 0, c: 0, n: 1, o: 0, len: 8, d: new Uint8Array(0) });
  const tally = { streams: 0, frames: 0, rejected: 0, intact: 0 };
  for (let i = 0; i < 2_000; i++) {
    // A stream of frames, each valid, with a mutated header, with random bytes, or announcing a size it never sends.
    const sent: { header: Uint8Array; data: Uint8Array }[] = [];
    const pieces: Buffer[] = [];
    let clean = true;
    for (let f = 0, n = 1 + Math.floor(rnd() * 4); f < n; f++) {
      const kind = Math.floor(rnd() * 4);
      const data = Uint8Array.from({ length: Math.floor(rnd() * 3000) }, () => Math.floor(rnd() * 256));
      const header = kind === 1 ? mutate(rnd, valid) : valid;
      if (kind === 2) {
        pieces.push(Buffer.from(Uint8Array.from({ length: 1 + Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256))));
        clean = false;
      } else if (kind === 3) {
        pieces.push(frame(header, Math.floor(rnd() * 2 ** 32), data));
        clean = false;
      } else {
        pieces.push(frame(header, data.length, data));
        if (header.length > 0) sent.push({ header, data });
        else clean = false;
      }
    }
    const stream = Buffer.concat(pieces);
    const reader = new FrameReader(new BufferPool(1024 * 1024));
    const got: { header: Uint8Array; data: Uint8Array }[] = [];
    let rejected = false;
    for (let at = 0; at < stream.length && !rejected;) {
      const n = 1 + Math.floor(rnd() * 4096);
      let out;
      try {
        out = reader.push(stream.subarray(at, at + n));
      } catch (err) {
        t.fail(`seed ${SEED}, stream ${i}: the reader threw ${String(err)}`);
        break;
      }
      at += n;
      if (out === undefined) rejected = true;
      else got.push(...out);
      if (!rejected && reader.held > MAX_HEADER_BYTES + Math.min(at, stream.length)) t.fail(`seed ${SEED}, stream ${i}: ${reader.held} bytes held after ${at}`);
    }
    tally.streams++;
    tally.frames += got.length;
    if (rejected) tally.rejected++;
    if (clean) {
      tally.intact++;
      t.false(rejected, `seed ${SEED}, stream ${i}: a valid stream was rejected`);
      t.deepEqual(
        got.map((f) => [Buffer.from(f.header).toString('hex'), Buffer.from(f.data).toString('hex')]),
        sent.map((f) => [Buffer.from(f.header).toString('hex'), Buffer.from(f.data).toString('hex')]),
        `seed ${SEED}, stream ${i}`,
      );
    }
  }
  t.log(`${tally.streams} streams (${tally.intact} valid): ${tally.frames} frames read, ${tally.rejected} streams rejected`);
  t.true(tally.rejected > 0 && tally.intact > 0, 'both kinds were tried');
});

test.serial(
  'bounded: fuzzing the ticket handshake of a real partition (seeded): every socket without a valid ticket is closed, counted, sent nothing',
  async (t) => {
    t.log(`fuzz seed ${SEED} (replay with SPS_FUZZ_SEED=${SEED})`);
    const rnd = seededRandom(SEED + 1);
    const { cluster, launcher } = await hostileCluster(t);
    t.deepEqual(await sumOfOnes(cluster), [3, 3, 3]);
    const s = subjectsFor(cluster.id!);
    const victim = cluster.members.find((m) => m.partition === 1)!;
    const attempt = cluster.members.find((m) => m.partition === 0)!.attempt;
    const before = (await cluster.request<Stats & { refusedSockets: number }>(1, 'stats'))!;
    const attacker = await connectBus(launcher.plan!.busFor(0), 'attacker-p0');
    t.teardown(() => attacker.close());
    const valid = encode('coll', { g: before.generation, s: 5_000, a: attempt, op: 'allReduce', tag: 0, c: 0, n: 1, o: 0, len: 8, d: new Uint8Array(0) });
    const probes = 200;
    let withTicket = 0;
    let answered = 0;
    for (let i = 0; i < probes; i++) {
      // A random head (sometimes a real ticket with one byte changed), or a real ticket followed by mutated frames.
      const real = rnd() < 0.2;
      let head: Buffer;
      if (real) {
        const reply = await attacker.request(s.coll(1, 0), encode('coll-ticket-get', { g: before.generation, a: attempt }), { timeout: 30_000 });
        const ticket = Buffer.from(decode(reply.subject, reply.data, ['coll-ticket']).ticket!, 'hex');
        const frames = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => {
          const header = mutate(rnd, valid);
          return frame(header, rnd() < 0.5 ? 8 : Math.floor(rnd() * 2 ** 32), new Uint8Array(8));
        });
        head = Buffer.concat([ticket, ...frames]);
        withTicket++;
      } else {
        head = Buffer.from(Uint8Array.from({ length: Math.floor(rnd() * 3 * TICKET_BYTES) }, () => Math.floor(rnd() * 256)));
      }
      const closed = { n: 0 };
      const sock = await connected(victim.host, victim.peerPort!, closed);
      sock.on('data', (d: Buffer) => (answered += d.length));
      // Our end closes after writing: a probe too short for a ticket is closed by us, not left waiting.
      await new Promise<void>((resolve) => {
        sock.once('close', () => resolve());
        sock.end(head);
      });
    }
    const after = (await cluster.request<Stats & { refusedSockets: number }>(1, 'stats'))!;
    t.log(
      `${probes} probes, ${withTicket} with a real ticket; partition 1 counted ${after.refusedSockets - before.refusedSockets} refused, ${after.malformed - before.malformed} malformed`,
    );
    t.is(answered, 0, 'nothing sent back');
    t.is(after.refusedSockets - before.refusedSockets, probes - withTicket, 'every socket without a valid ticket refused and counted');
    t.deepEqual(await sumOfOnes(cluster), [3, 3, 3]);
    const ping = await fetch(`http://${victim.host}:${victim.port}/app/ping`);
    t.is(await ping.text(), 'pong 1');
  },
);

test('bounded: inspected attempts per partition stay bounded under 100001 made-up attempts, the one heard of last is kept', (t) => {
  const attempts = new InspectedAttempts();
  const ref = (attempt: number) => ({ id: 'partition-0', sessionId: `a${attempt}`, seq: -1, latest: undefined, send: () => {}, getSnapshot: () => undefined });
  attempts.add(0, 0, ref(0));
  attempts.add(1, 0, ref(0));
  for (let a = 1; a <= 100_000; a++) {
    if (!attempts.get(0, a)) attempts.add(0, a, ref(a));
    // The real attempt of partition 1 keeps reporting while partition 0 is flooded.
    if (a % 1000 === 0) t.truthy(attempts.get(1, 0));
  }
  t.is(attempts.size, MAX_INSPECTED_ATTEMPTS + 1);
  t.is(attempts.get(0, 0), undefined, 'the flooded partition’s first attempt was pushed out');
  t.is(attempts.get(0, 100_000)?.sessionId, 'a100000');
  t.is(attempts.get(1, 0)?.sessionId, 'a0');
});

test.serial(
  'bounded: a flood of transitions for attempts 0..100000 with one partition’s credentials keeps the driver bounded; the real attempt still shows',
  async (t) => {
    const launcher = await CapturingLauncher.create([1, 2, 3], 2);
    const events: InspectionEvent[] = [];
    const cluster = testCluster(t, { server: TEST_SERVER, partitions: 2, launcher, log: false, inspect: (e) => events.push(e) });
    await cluster.start();
    const real = `sps.${cluster.id}:p0:a${cluster.members.find((m) => m.partition === 0)!.attempt}`;
    const attacker = await connectBus(launcher.plan!.busFor(0), 'attacker-p0');
    t.teardown(() => attacker.close());
    const subject = subjectsFor(cluster.id!).inspect(0);
    const last = 100_000;
    for (let a = 0; a <= last; a++) {
      // A high seq: were the attempt kept, the real one's next reports would be taken as repeats.
      attacker.publish(subject, encode('transition', { attempt: a, seq: 1e9, state: 'serving', status: 'active', event: 'forged' }));
      if (a % 10_000 === 0) await attacker.flush();
    }
    await attacker.flush();
    const forgedLast = `sps.${cluster.id}:p0:a${last}`;
    await waitUntil(() => events.some((e) => e.type === '@xstate.snapshot' && e.actorRef.sessionId === forgedLast), 120_000, 'the last forged transition');
    const afterFlood = events.length;
    await cluster.stop();
    const realAfter = events.slice(afterFlood).filter((e) => e.type === '@xstate.snapshot' && e.actorRef.sessionId === real);
    const values = realAfter.map((e) => JSON.stringify(((e as { snapshot?: unknown }).snapshot as { value: unknown }).value));
    t.true(values.includes('"finished"'), `the real attempt's stop still shows: ${values.join(' → ')}`);
  },
);
