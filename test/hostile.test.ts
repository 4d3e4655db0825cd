/**
 * A compromised executor or a local process cannot take down the run. Each case plays the attacker
 * against a real cluster (real nats-server, real worker processes), with what such an attacker
 * holds: one partition's credentials as the run handed them out, or nothing but network access.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Cluster } from '../src/index.js';
import { encode } from '../src/protocol/codec.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { HELD_CHUNK_OVERHEAD, HOLD_CHUNKS, HeldChunks } from '../src/collectives/held-chunks.js';
import { LineSplitter, MAX_LINE_CHARS, truncationMark } from '../src/process/output-lines.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { seededRandom } from './helpers/fuzz.js';
import { waitUntil } from './helpers/harness.js';

const COLLECTIVE_SERVER = new URL('./fixtures/collective-server.ts', import.meta.url);
const HOSTILE_SERVER = new URL('./fixtures/hostile-server.ts', import.meta.url);

type Stats = { generation: number; stale: number; malformed: number; overflow: number; heldChunks: number; heldBytes: number };
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

test('bounded: a collective flood with one partition’s credentials is dropped and counted, the peer stays bounded and keeps computing', async (t) => {
  const launcher = await CapturingLauncher.create([1, 2, 3], 3);
  const cluster = new Cluster({ server: COLLECTIVE_SERVER, partitions: 3, launcher, log: false });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const s = subjectsFor(cluster.id!);
  const stats = async (): Promise<Stats> => (await cluster.request<Stats>(1, 'stats'))!;
  const sum = async (): Promise<unknown[]> => [...(await cluster.requestAll<Outcome>('allReduce', 1)).values()].map((r) => (r.ok ? r.value : r.error.message));
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

test('bounded: a worker writing 32 MiB without a newline reaches the driver as one cut, marked line, and the next line still comes', async (t) => {
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
  const cluster = new Cluster({ server: HOSTILE_SERVER, data: [1, 2], partitions: 1, logger, logLevel: 'info' });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
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
