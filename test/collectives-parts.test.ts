/**
 * The parts communicator.ts composes, each alone: a call's channel (values cut into chunks and put
 * back together), the chunk sender (NATS or a direct socket, flow control, fallback), a call's
 * supervision (deadline, signal, flushes) and the inbound side (checks and filing). Fake links, a
 * fake clock and no sockets: nothing here waits for time to pass.
 */
import test from 'ava';
import { CollectiveAbortedError, CollectiveError, CollectiveTimeoutError } from '../src/errors.js';
import { decode, encode } from '../src/protocol/codec.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import type { Member } from '../src/protocol/types.js';
import type { Chunk } from '../src/worker/collectives/channel.js';
import { callChannel } from '../src/worker/collectives/call-channel.js';
import { checkCallOptions, loadOptionsSchema } from '../src/worker/collectives/collective-options.js';
import { Communicator } from '../src/worker/collectives/communicator.js';
import { collectiveMethods } from '../src/worker/collectives/methods.js';
import { superviseCall } from '../src/worker/collectives/call-run.js';
import { ChunkSender, type ChunkLinks } from '../src/worker/collectives/chunk-sender.js';
import { NatsFlow } from '../src/worker/collectives/flow-control.js';
import { Inbound, type InboundParts } from '../src/worker/collectives/inbound.js';
import { Call, chunkKey, Mailbox } from '../src/worker/collectives/mailbox.js';
import { CallSequence } from '../src/worker/collectives/sequencing.js';
import { toWire } from '../src/worker/collectives/values.js';
import { FakeBus, FakeClock, settle } from './helpers/fake-bus.js';

type Sent = { to: number | 'all'; tag: number; k: Omit<Chunk, 'from' | 'op' | 'tag'> };

test('call channel: a value goes out in chunks and comes back whole from chunks in any order, each chunk given back once', async (t) => {
  const call = new Call('allGather', 0, 4, [1]);
  const box = new Mailbox(() => {});
  box.open(call);
  const sent: Sent[] = [];
  const ch = callChannel(call, {
    rank: 0,
    size: 2,
    chunkBytes: 16,
    sendChunk: async (to, tag, k) => void sent.push({ to, tag, k }),
    take: (c, key) => box.take(c, key),
  });
  const value = Float64Array.from({ length: 5 }, (_, i) => i + 0.5);
  await ch.send(1, 7, toWire(value));
  t.deepEqual(
    sent.map((s) => [s.to, s.tag, s.k.c, s.k.n, s.k.o, s.k.len, s.k.d.length, s.k.dt]),
    [
      [1, 7, 0, 3, 0, 40, 16, 'Float64Array'],
      [1, 7, 1, 3, 16, 40, 16, 'Float64Array'],
      [1, 7, 2, 3, 32, 40, 8, 'Float64Array'],
    ],
  );
  // The same chunks arriving from partition 1, last first.
  const given: number[] = [];
  const receiving = ch.recvValue(1, 7);
  for (const s of [...sent].reverse()) {
    const chunk: Chunk = { from: 1, op: 'allGather', tag: 7, ...s.k, d: s.k.d.slice(), done: () => given.push(s.k.c) };
    box.deliver(4, chunkKey(1, 7, s.k.c), chunk);
  }
  t.deepEqual([...((await receiving) as Float64Array)], [...value]);
  t.deepEqual(given.sort(), [0, 1, 2]);
});

test('call channel: a chunk of another call, or chunks of different values, are named as a mismatch', async (t) => {
  const call = new Call('allReduce', 2, 0, [1]);
  const box = new Mailbox(() => {});
  box.open(call);
  const ch = callChannel(call, { rank: 0, size: 2, chunkBytes: 8, sendChunk: async () => {}, take: (c, key) => box.take(c, key) });
  box.deliver(0, chunkKey(1, 0, 0), { from: 1, op: 'broadcast', tag: 0, c: 0, n: 1, o: 0, len: 0, d: new Uint8Array(0) });
  const e = await t.throwsAsync(ch.recvChunk(1, 0, 0), { instanceOf: CollectiveError });
  t.regex(e.message, /partition 1 called broadcast as call 0 of generation 2, where partition 0 called allReduce/);
  box.deliver(0, chunkKey(1, 1, 0), { from: 1, op: 'allReduce', tag: 1, c: 0, n: 2, o: 0, len: 16, d: new Uint8Array(8) });
  box.deliver(0, chunkKey(1, 1, 1), { from: 1, op: 'allReduce', tag: 1, c: 1, n: 2, o: 8, len: 24, d: new Uint8Array(8) });
  await t.throwsAsync(ch.recvValue(1, 1), { instanceOf: CollectiveError, message: /partition 1 sent chunks of different values/ });
});

/** Links that record what goes out; socket `s<peer>` exists for the peers in `sockets`, and `broken` refuse to open. */
function fakeLinks(sockets: number[] = [], broken: number[] = []) {
  const published: { to: number | 'all'; data: Uint8Array }[] = [];
  const written: { sock: string; header: Uint8Array; data: Uint8Array }[] = [];
  const flushes: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const links: ChunkLinks<string> = {
    publish: (to, data) => void published.push({ to, data }),
    socketTo: async (to) => {
      if (broken.includes(to)) throw new Error('refused');
      return sockets.includes(to) ? `s${to}` : undefined;
    },
    write: (sock, header, data) => {
      written.push({ sock, header, data });
      return new Promise<void>((resolve, reject) => flushes.push({ resolve, reject }));
    },
  };
  return { links, published, written, flushes };
}

function sender(links: ChunkLinks<string>, opts: { partitions?: number; clearOnTlsBus?: boolean; flow?: NatsFlow } = {}) {
  let direct = 0;
  const flow = opts.flow ?? new NatsFlow(() => {});
  flow.reset(0);
  const s = new ChunkSender(
    { partition: 0, attempt: 3, partitions: opts.partitions ?? 4, clearOnTlsBus: () => opts.clearOnTlsBus ?? false, sentDirect: (b) => (direct += b) },
    links,
    flow,
  );
  return { s, flow, direct: () => direct };
}

const piece = (bytes: number) => ({ c: 0, n: 1, o: 0, len: bytes, d: new Uint8Array(bytes) });

test('chunk sender over NATS: one publish to a peer or to all, with the call’s generation, number and this attempt', async (t) => {
  const { links, published, written } = fakeLinks([1, 2, 3]);
  const { s } = sender(links);
  const { sendChunk, flushes } = s.forCall(new Call('barrier', 5, 9, [1, 2, 3]), 'nats');
  await sendChunk('all', 2, piece(4));
  await sendChunk(1, 2, piece(4));
  t.deepEqual(
    published.map((p) => p.to),
    ['all', 1],
  );
  t.like(decode('x', published[0]!.data, ['coll']), { g: 5, s: 9, a: 3, op: 'barrier', tag: 2, len: 4 });
  t.deepEqual([written.length, flushes.length], [0, 0]);
});

test('chunk sender, direct: a frame per peer, counted and flushed; a peer without a socket or whose socket fails hears over NATS', async (t) => {
  const { links, published, written, flushes: pending } = fakeLinks([1], [2]);
  const { s, direct } = sender(links);
  const { sendChunk, flushes } = s.forCall(new Call('broadcast', 0, 0, []), 'direct');
  await sendChunk('all', 0, piece(8));
  t.deepEqual(
    written.map((w) => [w.sock, w.data.length]),
    [['s1', 8]],
  );
  t.deepEqual(decode('direct', written[0]!.header, ['coll']).d.length, 0, 'the data goes beside the header, not in it');
  t.deepEqual(
    published.map((p) => p.to),
    [2, 3],
  );
  t.is(direct(), 8);
  t.is(flushes.length, 1);
  pending[0]!.resolve();
  await t.notThrowsAsync(Promise.all(flushes));
});

test('chunk sender, auto: direct in a small group, NATS when the bus speaks TLS and the sockets do not', async (t) => {
  const small = fakeLinks([1, 2, 3]);
  await sender(small.links)
    .s.forCall(new Call('barrier', 0, 0, []), 'auto')
    .sendChunk(1, 0, piece(1));
  t.deepEqual([small.written.length, small.published.length], [1, 0]);
  const clear = fakeLinks([1, 2, 3]);
  await sender(clear.links, { clearOnTlsBus: true })
    .s.forCall(new Call('barrier', 0, 0, []), 'auto')
    .sendChunk(1, 0, piece(1));
  t.deepEqual([clear.written.length, clear.published.length], [0, 1]);
});

test('chunk sender: waits for flow-control credit; a call that fails meanwhile rejects, and a failed call sends nothing', async (t) => {
  const { links, published } = fakeLinks();
  const flow = new NatsFlow(() => {}, 10, 10);
  const { s } = sender(links, { partitions: 2, flow });
  const call = new Call('allReduce', 0, 0, [1]);
  const { sendChunk } = s.forCall(call, 'nats');
  await sendChunk(1, 0, piece(8));
  let done = false;
  const second = sendChunk(1, 0, piece(8)).then(() => (done = true));
  await settle();
  t.false(done, 'the window is full');
  // The window counts the encoded message, envelope and all.
  flow.acked(1, 0, published[0]!.data.length);
  await second;
  t.is(published.length, 2);
  const third = sendChunk(1, 0, piece(8));
  call.fail(new Error('generation rose'));
  await t.throwsAsync(third, { message: 'generation rose' });
  await t.throwsAsync(sendChunk(1, 0, piece(1)), { message: 'generation rose' });
  t.is(published.length, 2);
});

test('a call’s supervision on a fake clock: times out at its deadline (not before), failing its waiting receives; the timer is gone after', async (t) => {
  const clock = new FakeClock();
  const call = new Call('barrier', 0, 0, [1]);
  const box = new Mailbox(() => {});
  box.open(call);
  const run = superviseCall(call, { clock, deadline: 1000, timeoutError: () => new Error('timed out') }, () => box.take(call, chunkKey(1, 0, 0)), []);
  run.catch(() => {});
  await clock.advance(999);
  t.is(call.error, undefined);
  await clock.advance(1);
  await t.throwsAsync(run, { message: 'timed out' });
  t.is(clock.pending, 0);
});

test('a call’s supervision: an abort fails it with the signal’s reason; success waits for the flushes and removes timer and listener', async (t) => {
  const clock = new FakeClock();
  const aborting = new AbortController();
  const stuck = new Call('barrier', 0, 0, [1]);
  const run = superviseCall(
    stuck,
    { clock, deadline: 1000, signal: aborting.signal, timeoutError: () => new Error('x') },
    () => new Promise<never>(() => {}),
    [],
  );
  aborting.abort(new Error('stop'));
  await t.throwsAsync(run, { message: 'stop' });
  t.is(clock.pending, 0);

  const signal = new AbortController().signal;
  let flushed!: () => void;
  const flushes = [new Promise<void>((resolve) => (flushed = resolve))];
  let over = false;
  const ok = superviseCall(
    new Call('broadcast', 0, 1, []),
    { clock, deadline: 1000, signal, timeoutError: () => new Error('x') },
    async () => 42,
    flushes,
  ).then((v) => {
    over = true;
    return v;
  });
  await settle();
  t.false(over, 'bytes still queued on a socket are the caller’s arrays');
  flushed();
  t.is(await ok, 42);
  t.is(clock.pending, 0);

  const failing = new Call('allGather', 0, 2, []);
  await t.throwsAsync(
    superviseCall(failing, { clock, deadline: 10, timeoutError: () => new Error('x') }, () => Promise.reject(new Error('bad value')), []),
    {
      message: 'bad value',
    },
  );
  t.is((failing.error as Error).message, 'bad value', 'the body’s failure fails the call');
});

const member = (partition: number, attempt = 0): Member => ({ partition, attempt, host: 'h', port: null, pid: 1, state: 'serving', endpoints: [] });

/** An inbound side for partition 0 of 3 in generation 1, with everything it does recorded. */
function inbound() {
  const counts = { stale: 0, malformed: 0, overflow: 0 };
  const acks: unknown[] = [];
  const tickets: unknown[] = [];
  const recycled: Uint8Array[] = [];
  const flow = new NatsFlow(() => {});
  flow.reset(1);
  const mailbox = new Mailbox((n) => (counts.overflow += n));
  const parts: InboundParts = {
    partition: 0,
    partitions: 3,
    generation: () => 1,
    members: () => [member(0), member(1, 2), member(2)],
    seq: new CallSequence(4),
    mailbox,
    flow: Object.assign(flow, { acked: (...a: unknown[]) => void acks.push(a) }),
    counts,
    subjectFrom: (from) => `coll.0.${from}`,
    answerTicket: (...a) => void tickets.push(a),
    recycle: (d) => void recycled.push(d),
  };
  return { inb: new Inbound(parts), counts, acks, tickets, recycled, mailbox };
}

const frame = (g: number, a: number, more: { s?: number; c?: number; n?: number; op?: string } = {}) =>
  encode('coll', { g, s: more.s ?? 0, a, op: more.op ?? 'barrier', tag: 0, c: more.c ?? 0, n: more.n ?? 1, o: 0, len: 0, d: new Uint8Array(0) });

test('inbound: files a chunk for its call; stale, early, repeated, malformed and beyond-the-window messages are held or counted', async (t) => {
  const { inb, counts, mailbox } = inbound();
  const call = new Call('barrier', 1, 0, [1]);
  mailbox.open(call);
  const waiting = mailbox.take(call, chunkKey(1, 0, 0));
  inb.fromBus('coll.0.1', frame(1, 2));
  t.is((await waiting).from, 1);
  inb.fromBus('coll.all.0', frame(1, 0)); // this partition's own, echoed
  inb.fromBus('coll.0.1', frame(0, 2)); // an older generation
  inb.fromBus('coll.0.1', frame(1, 1)); // a replaced attempt
  inb.fromBus('coll.0.2', frame(1, 0, { s: 9 })); // beyond the window of calls
  inb.fromBus('coll.0.9', frame(1, 0)); // no such partition
  inb.fromBus('coll.0.2', frame(1, 0, { c: 2, n: 1 })); // chunk index past the count
  t.deepEqual(counts, { stale: 2, malformed: 2, overflow: 1 });
  inb.fromBus('coll.0.2', frame(2, 0)); // the next generation: held for it
  t.is(mailbox.held.chunks, 1);
  inb.fromBus('coll.0.2', frame(1, 0, { s: 1 }));
  inb.fromBus('coll.0.2', frame(1, 0, { s: 1 }));
  t.is(counts.stale, 3, 'a repeat is stale');
});

test('inbound: acknowledgements go to flow control; a ticket request is answered only on the subject that proves the asker; direct frames are checked and given back once', async (t) => {
  const { inb, counts, acks, tickets, recycled, mailbox } = inbound();
  inb.fromBus('coll.0.2', encode('coll-ack', { g: 1, bytes: 100 }));
  t.deepEqual(acks, [[2, 1, 100]]);
  inb.fromBus('coll.0.2', encode('coll-ticket-get', { g: 1, a: 0 }), '_INBOX.1');
  inb.fromBus('coll.all.2', encode('coll-ticket-get', { g: 1, a: 0 }), '_INBOX.2');
  inb.fromBus('coll.0.2', encode('coll-ticket-get', { g: 1, a: 0 }));
  t.deepEqual(tickets, [['_INBOX.1', 2, 1, 0]]);
  t.is(counts.malformed, 2);

  const call = new Call('barrier', 1, 0, [1]);
  mailbox.open(call);
  const data = Uint8Array.of();
  inb.fromSocket(1, 1, frame(1, 2), data);
  t.is(counts.malformed, 3, 'a frame naming another attempt than its socket’s');
  inb.fromSocket(1, 2, frame(1, 2), data);
  const chunk = await mailbox.take(call, chunkKey(1, 0, 0));
  chunk.done!();
  chunk.done!();
  t.deepEqual(recycled, [data]);
});

// This file loads the collective options' schema only here (no other test gives a call options),
// so the call below is the first given any: it waits for the schema before it starts.
test('a call made with every partition up, whose options are still being checked when the generation rises, is aborted naming who failed; it does not wait for a new view', async (t) => {
  const clock = new FakeClock();
  const comm = new Communicator(new FakeBus().connection(), subjectsFor('parts'), 0, 0, 3, 64, clock);
  comm.defaultTransport = 'nats';
  comm.listen();
  const up = (p: number, state: Member['state'] = 'serving'): Member => ({
    partition: p,
    attempt: 0,
    host: '127.0.0.1',
    port: null,
    pid: 1,
    state,
    endpoints: [],
  });
  comm.setView(0, [up(0), up(1), up(2)]);
  t.true(checkCallOptions('barrier', { timeoutMs: 1 }) instanceof Promise, 'the options schema is not loaded yet in this process');
  const call = collectiveMethods(comm).allReduce(1, 'sum', { timeoutMs: 1000 });
  // In the same turn, before the schema can have loaded: partition 2 failed.
  comm.setView(1, [up(0), up(1), up(2, 'failed')]);
  await loadOptionsSchema();
  await settle();
  // Had the call gone on to wait for every partition, only its deadline would end it.
  await clock.advance(1000);
  const err = await t.throwsAsync(call, { instanceOf: CollectiveAbortedError });
  t.false(err instanceof CollectiveTimeoutError);
  t.deepEqual(err.partitions, [2]);
  t.regex(err.message, /aborted \(generation 0\): partition\(s\) 2 failed or were replaced; generation is now 1/);
  comm.close();
});
