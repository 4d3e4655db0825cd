/**
 * The parts of a partition's collective messaging, each alone (sequencing, mailbox, flow control,
 * tickets, readiness) and together in communicators joined by an in-memory bus, on a clock that
 * moves only when a test moves it: deterministic, and no real timer is waited on. The same code
 * over real nats-server and real sockets is tested in collectives.test.ts.
 */
import test from 'ava';
import { CollectiveAbortedError, CollectiveError, CollectiveTimeoutError, InvalidOptionError } from '../src/errors.js';
import { decode, encode } from '../src/protocol/codec.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import type { Member } from '../src/protocol/types.js';
import { Changes, waitFor } from '../src/protocol/wait-for.js';
import type { Chunk } from '../src/worker/collectives/channel.js';
import { callSettings, DEFAULT_COLLECTIVE_TIMEOUT_MS, loadOptionsSchema } from '../src/worker/collectives/collective-options.js';
import { checkCollectiveOptions } from '../src/worker/collectives/collective-options-schema.js';
import { Communicator } from '../src/worker/collectives/communicator.js';
import { NatsFlow } from '../src/worker/collectives/flow-control.js';
import { Call, chunkKey, Mailbox } from '../src/worker/collectives/mailbox.js';
import { collectiveMethods } from '../src/worker/collectives/methods.js';
import { allReady, notReady, waitReady, type ReadinessView } from '../src/worker/collectives/readiness.js';
import { CallSequence } from '../src/worker/collectives/sequencing.js';
import { certOf, requestTicket, ticketFor, type TicketState } from '../src/worker/collectives/tickets.js';
import { FakeBus, FakeClock, settle } from './helpers/fake-bus.js';

// A call given options checks them with their schema, loaded with the first such call: loaded here,
// so that calls on the simulated clock start within the turn they are made, as in a running worker.
test.before(loadOptionsSchema);

const member = (partition: number, attempt = 0, state: Member['state'] = 'serving', extra: Partial<Member> = {}): Member => ({
  partition,
  attempt,
  host: '127.0.0.1',
  port: null,
  pid: 1000 + partition,
  state,
  endpoints: [],
  ...extra,
});
const chunk = (from: number, d: number[] = [1], op = 'barrier'): Chunk => ({ from, op, tag: 0, c: 0, n: 1, o: 0, len: d.length, d: Uint8Array.from(d) });

test('call settings: defaults, and the transport of the cluster unless the call names one', (t) => {
  t.deepEqual(callSettings({}, 'nats'), { timeoutMs: DEFAULT_COLLECTIVE_TIMEOUT_MS, transport: 'nats' });
  t.deepEqual(callSettings({ timeoutMs: 5, transport: 'direct' }, 'nats'), { timeoutMs: 5, transport: 'direct' });
});

test('call options, checked by their schema: unknown fields named with the nearest known one, wrong values a collective argument error naming the call', (t) => {
  t.notThrows(() =>
    checkCollectiveOptions('allReduce-ring', { timeoutMs: 5, transport: 'direct', algorithm: 'ring', inPlace: true, signal: new AbortController().signal }),
  );
  t.throws(() => checkCollectiveOptions('allReduce-ring', { timeoutMS: 5 }), {
    instanceOf: InvalidOptionError,
    message: /ctx\.allReduce\.timeoutMS.*did you mean "ctx\.allReduce\.timeoutMs"\?/,
  });
  t.throws(() => checkCollectiveOptions('barrier', 5), { instanceOf: InvalidOptionError, message: /ctx\.barrier.*options must be an object, got number/ });
  const wrong: [string, unknown, RegExp][] = [
    ['barrier', { timeoutMs: 0 }, /barrier.*timeoutMs must be a positive number of milliseconds, got 0/],
    ['barrier', { transport: 'tcp' }, /transport must be "nats", "direct", "auto", got "tcp"/],
    ['allReduce-chunked', { algorithm: 'tree' }, /allReduce.*algorithm must be "direct", "ring", got "tree"/],
    ['allReduce', { inPlace: 'yes' }, /inPlace must be true or false, got "yes"/],
    ['gather', { signal: 'stop' }, /signal must be an AbortSignal/],
  ];
  for (const [op, opts, message] of wrong) {
    const err = t.throws(() => checkCollectiveOptions(op, opts), { instanceOf: CollectiveError, message });
    t.is(err?.code, 'SPS_COLLECTIVE_ARGUMENT');
    t.is((err as CollectiveError | undefined)?.operation, op.split('-')[0]);
  }
});

test('call sequence: numbers calls in order, a call ended is stale even when it ended out of order, and messages too far ahead overflow', (t) => {
  const seq = new CallSequence(4);
  t.deepEqual([seq.next(), seq.next(), seq.next()], [0, 1, 2]);
  t.is(seq.standing(1), 'open');
  t.is(seq.standing(3 + 4), 'overflow', 'the window counts from the next call');
  t.is(seq.standing(3 + 3), 'open');
  seq.end(1);
  t.is(seq.standing(1), 'stale');
  t.is(seq.standing(0), 'open', 'call 0 is still running');
  seq.end(0);
  t.is(seq.standing(0), 'stale');
  seq.arrive(2, 5);
  seq.arrive(2, 7);
  t.deepEqual(seq.neverArrived(2, [5, 6, 7, 8]), [6, 8]);
  seq.end(2);
  t.deepEqual(seq.neverArrived(2, [5]), [5], 'what arrived for an ended call is forgotten');
  seq.reset();
  t.is(seq.next(), 0, 'a new generation numbers from 0');
  t.is(seq.standing(1), 'open');
});

test('mailbox: a chunk before its receive is held and taken, a receive before its chunk is answered, a repeat is named, a failure rejects waiting receives', async (t) => {
  let overflow = 0;
  const box = new Mailbox((n) => (overflow += n));
  const call = new Call('barrier', 0, 0, [1, 2]);
  box.open(call);
  t.is(box.deliver(0, chunkKey(1, 0, 0), chunk(1, [9])), 'held');
  t.is(box.deliver(0, chunkKey(1, 0, 0), chunk(1, [9])), 'repeat');
  t.is(box.held.chunks, 1);
  t.deepEqual([...(await box.take(call, chunkKey(1, 0, 0))).d], [9]);
  t.is(box.held.chunks, 0);
  const waiting = box.take(call, chunkKey(2, 0, 0));
  const other = box.take(call, chunkKey(2, 0, 1));
  t.deepEqual(call.pendingSenders(), [2]);
  t.is(box.deliver(0, chunkKey(2, 0, 0), chunk(2, [4])), 'received');
  t.deepEqual([...(await waiting).d], [4]);
  call.fail(new Error('peer gone'));
  await t.throwsAsync(other, { message: 'peer gone' });
  await t.throwsAsync(box.take(call, chunkKey(2, 0, 2)), { message: 'peer gone' }, 'a failed call takes nothing more');
  // Chunks for a call not made yet are held until it ends.
  t.is(box.deliver(1, chunkKey(1, 0, 0), chunk(1)), 'held');
  box.close(new Call('barrier', 0, 1, []), true);
  t.is(box.held.chunks, 0);
  t.is(overflow, 0);
});

test('flow control: a sender stops at the window until the peer acknowledges; a new generation empties the window and frees the waiting sender', async (t) => {
  const acks: [number, number, number][] = [];
  const flow = new NatsFlow((to, g, bytes) => acks.push([to, g, bytes]), 100, 40);
  flow.reset(0);
  t.is(flow.credit([1, 2], 1000), undefined, 'an empty window takes any message');
  flow.sent([1, 2], 1000);
  const waiting = flow.credit([1], 10);
  t.truthy(waiting);
  let freed = false;
  void waiting!.then(() => (freed = true));
  flow.acked(1, 0, 500);
  await settle();
  t.false(freed, 'still 500 bytes out');
  flow.acked(1, 0, 400);
  flow.acked(1, -1, 1000);
  await settle();
  t.false(freed, 'an old or smaller acknowledgement changes nothing');
  flow.acked(1, 0, 1000);
  await settle();
  t.true(freed);
  t.truthy(flow.credit([2], 10), 'peer 2 has acknowledged nothing');
  const blocked = flow.credit([2], 10)!;
  flow.reset(1);
  await blocked;
  t.is(flow.credit([2], 10), undefined);
  // The receiving side: an acknowledgement after every 40 bytes from one sender, counting all of them.
  flow.received(3, 1, 30);
  t.deepEqual(acks, []);
  flow.received(3, 1, 30);
  flow.received(3, 0, 100);
  flow.received(3, 1, 10);
  flow.received(3, 1, 30);
  t.deepEqual(acks, [
    [3, 1, 60],
    [3, 1, 100],
  ]);
  flow.received(4, 9, 100);
  t.is(acks.length, 3, 'a sender ahead is acknowledged too…');
  flow.reset(2);
  flow.received(4, 2, 40);
  t.deepEqual(acks.at(-1), [4, 2, 40], '…but its count from far ahead does not outlive the next generation');
});

test('tickets: refused with the reason when there is no socket, an insecure one on a TLS bus, an old generation or a non-member attempt; granted otherwise', (t) => {
  const base: TicketState = { partition: 0, generation: 3, members: [member(0), member(1, 2)], peerPort: 4000, busEncrypted: false, directCert: undefined };
  let granted = 0;
  const grant = (): string => `ticket-${++granted}`;
  t.deepEqual(ticketFor({ ...base, peerPort: undefined }, 1, 3, 2, grant), { reason: 'partition 0 has no direct socket' });
  t.deepEqual(ticketFor({ ...base, busEncrypted: true }, 1, 3, 2, grant), { reason: 'partition 0 has not secured its direct socket yet' });
  t.deepEqual(ticketFor(base, 1, 2, 2, grant), { reason: 'partition 0 is in generation 3, not 2' });
  t.deepEqual(ticketFor(base, 1, 3, 1, grant), { reason: 'attempt 1 of partition 1 is not a member' });
  t.is(granted, 0);
  t.deepEqual(ticketFor(base, 1, 3, 2, grant), { ticket: 'ticket-1' });
  t.deepEqual(ticketFor(base, 1, 4, 7, grant), { ticket: 'ticket-2' }, 'a later generation is checked on every frame instead');
  t.deepEqual(ticketFor({ ...base, busEncrypted: true, directCert: 'ab' }, 1, 3, 2, grant), { ticket: 'ticket-3' });
});

test('certificate of a peer: known at once, waited for while the view is behind, undefined for another attempt or a partition the view never shows', async (t) => {
  const clock = new FakeClock();
  let members = [member(1, 0, 'serving', { peerCert: 'old' })];
  const changes = new Changes();
  t.is(await certOf(() => members, changes, 1, 0, 100, clock), 'old');
  const later = certOf(() => members, changes, 1, 1, 100, clock);
  await clock.advance(50);
  members = [member(1, 1, 'registered', { peerCert: 'new' })];
  changes.notify();
  t.is(await later, 'new');
  members = [member(1, 3)];
  t.is(await certOf(() => members, changes, 1, 2, 100, clock), undefined, 'a newer attempt replaced it');
  const never = certOf(() => members, changes, 2, 0, 100, clock);
  await clock.advance(99);
  t.is(clock.pending, 1);
  await clock.advance(1);
  t.is(await never, undefined);
  t.is(clock.pending, 0);
});

test('readiness: every partition registered, serving or draining, and this partition is its current attempt', (t) => {
  const up = [member(0), member(1, 0, 'registered'), member(2, 0, 'draining')];
  t.true(allReady(up, 3, 0, 0));
  t.false(allReady(up, 3, 0, 1), 'another attempt of this partition is the member');
  t.false(allReady(up.slice(0, 2), 3, 0, 0));
  t.false(allReady([member(0), member(1, 0, 'initializing'), member(2)], 3, 0, 0));
  t.deepEqual(notReady([member(0), member(2, 0, 'failed')], 4), [1, 2, 3]);
});

test('waiting for readiness: ends when a view shows everyone up, times out at the deadline naming who is not serving, aborts when this attempt is replaced', async (t) => {
  const clock = new FakeClock();
  let members: Member[] = [member(0), member(1, 0, 'initializing')];
  const view: ReadinessView = { members: () => members, generation: () => 4, changes: new Changes(), partitions: 3, partition: 0, attempt: 0, clock };
  const show = (m: Member[]): void => {
    members = m;
    view.changes.notify();
  };
  const up = waitReady(view, 'barrier', 100, 100);
  show([member(0), member(1), member(2, 0, 'registered')]);
  await t.notThrowsAsync(up);

  show([member(0), member(1, 0, 'initializing')]);
  const late = waitReady(view, 'barrier', 100, clock.now() + 100);
  await clock.advance(99);
  show([member(0), member(1), member(2, 0, 'failed')]);
  await clock.advance(1);
  const timeout = await t.throwsAsync(late, { instanceOf: CollectiveTimeoutError });
  t.regex(timeout.message, /partition\(s\) 2 not serving in generation 4/);

  const replaced = waitReady(view, 'allReduce', 100, clock.now() + 100);
  show([member(0, 1), member(1), member(2)]);
  const aborted = await t.throwsAsync(replaced, { instanceOf: CollectiveAbortedError });
  t.regex(aborted.message, /attempt 0 of partition 0 was replaced/);

  const ac = new AbortController();
  const stopped = waitReady(view, 'barrier', 100, clock.now() + 100, ac.signal);
  ac.abort(new Error('stopped by the caller'));
  await t.throwsAsync(stopped, { message: 'stopped by the caller' });
  t.is(clock.pending, 0, 'every timer was removed');
});

test('asking a peer for a ticket: the subject and request carry who and when; a refusal rejects naming the peer and its reason', async (t) => {
  const asked: unknown[] = [];
  const answer = (body: { ticket?: string; reason?: string }) => async (data: Uint8Array, timeoutMs: number) => {
    asked.push([decode('coll.1.0', data, ['coll-ticket-get']), timeoutMs > 0]);
    return { subject: 'reply', data: encode('coll-ticket', body) };
  };
  t.is(await requestTicket(answer({ ticket: 'ab'.repeat(32) }), 1, 3, 2, 'allReduce'), 'ab'.repeat(32));
  t.deepEqual(asked, [[{ t: 'coll-ticket-get', g: 3, a: 2 }, true]]);
  const refused = await t.throwsAsync(requestTicket(answer({ reason: 'partition 1 is in generation 4, not 3' }), 1, 3, 2, 'allReduce'), {
    instanceOf: CollectiveError,
  });
  t.is(refused.code, 'SPS_COLLECTIVE_DIRECT');
  t.regex(refused.message, /partition 1 refused a direct socket: partition 1 is in generation 4, not 3/);
});

test('waitFor on a fake clock: holds at once, on a change, times out only when the clock passes the timeout, and ends on a signal', async (t) => {
  const clock = new FakeClock();
  const changes = new Changes();
  let x = 0;
  t.is(await waitFor(() => x === 0 && 'now', { changes, clock, timeoutMs: 10 }), 'now');
  const onChange = waitFor(() => x === 1 && 'one', { changes, clock, timeoutMs: 10 });
  x = 1;
  changes.notify();
  t.is(await onChange, 'one');
  const late = waitFor(() => x === 2, { changes, clock, timeoutMs: 10, onTimeout: () => new Error('too late') });
  await clock.advance(9);
  changes.notify();
  await clock.advance(1);
  await t.throwsAsync(late, { message: 'too late' });
  const ac = new AbortController();
  const aborted = waitFor(() => false, { changes, clock, timeoutMs: 10, signal: ac.signal });
  ac.abort(new Error('stop'));
  await t.throwsAsync(aborted, { message: 'stop' });
  t.is(clock.pending, 0, 'every timer was removed');
});

/** `n` communicators of one cluster on one in-memory bus and one fake clock, all serving in generation 0. */
function group(n: number, chunkBytes = 64) {
  const bus = new FakeBus();
  const clock = new FakeClock();
  const subjects = subjectsFor('units');
  const comms = Array.from({ length: n }, (_, p) => {
    const c = new Communicator(bus.connection(), subjects, p, 0, n, chunkBytes, clock);
    c.defaultTransport = 'nats';
    c.listen();
    return c;
  });
  const members = Array.from({ length: n }, (_, p) => member(p));
  for (const c of comms) c.setView(0, members);
  return { bus, clock, subjects, comms, members, methods: comms.map((c) => collectiveMethods(c)) };
}

test('communicators on an in-memory bus: barrier, broadcast, allGather, allReduce of values in several chunks, with no timer fired', async (t) => {
  const { comms, methods, clock } = group(3);
  await Promise.all(methods.map((m) => m.barrier()));
  t.deepEqual(await Promise.all(methods.map((m, p) => m.broadcast(p === 1 ? { hello: 'from 1' } : undefined, 1))), Array(3).fill({ hello: 'from 1' }));
  t.deepEqual(await Promise.all(methods.map((m, p) => m.allGather(p * 10))), Array(3).fill([0, 10, 20]));
  const values = comms.map((c) => Float64Array.from({ length: 100 }, (_, i) => i * (c.partition + 1)));
  const sums = await Promise.all(methods.map((m, p) => m.allReduce(values[p]!, 'sum')));
  for (const s of sums)
    t.deepEqual(
      [...s],
      Array.from({ length: 100 }, (_, i) => i * 6),
    );
  t.is(clock.pending, 0, 'each call removed its deadline');
  for (const c of comms) t.like(c.stats, { generation: 0, stale: 0, malformed: 0, overflow: 0, heldChunks: 0 });
});

test('a call whose peer never calls times out when the fake clock passes its deadline, naming that peer; data of the ended call is then stale', async (t) => {
  const { bus, clock, subjects, methods, comms } = group(3);
  const calls = [methods[0]!.barrier({ timeoutMs: 1000 }), methods[1]!.barrier({ timeoutMs: 1000 })];
  const settled: unknown[] = [];
  for (const c of calls) c.catch((e: unknown) => settled.push(e));
  await clock.advance(999);
  t.is(settled.length, 0, 'nothing before the deadline');
  await clock.advance(1);
  t.is(settled.length, 2);
  for (const e of settled) {
    t.true(e instanceof CollectiveTimeoutError);
    t.deepEqual((e as CollectiveTimeoutError).missing, [2]);
    t.regex((e as Error).message, /partition\(s\) 2 never arrived \(call 0 of generation 0/);
  }
  // Partition 2's late barrier data arrives at partitions 0 and 1 for a call they ended.
  bus.publish(subjects.coll('all', 2), encode('coll', { g: 0, s: 0, a: 0, op: 'barrier', tag: 0, c: 0, n: 1, o: 0, len: 0, d: new Uint8Array(0) }));
  await settle();
  t.is(comms[0]!.stats.stale, 1);
  t.is(comms[1]!.stats.stale, 1);
});

test('a call before every partition is up waits for the view; it times out naming who is not serving, or runs once they are', async (t) => {
  const { clock, comms, methods, members } = group(2);
  const starting = [members[0]!, member(1, 0, 'initializing')];
  for (const c of comms) c.setView(0, starting);
  const late = methods[0]!.barrier({ timeoutMs: 500 });
  await clock.advance(500);
  const e = await t.throwsAsync(late, { instanceOf: CollectiveTimeoutError });
  t.deepEqual(e.missing, [1]);
  t.regex(e.message, /partition\(s\) 1 not serving in generation 0/);
  const waiting = Promise.all(methods.map((m) => m.barrier({ timeoutMs: 500 })));
  await clock.advance(100);
  for (const c of comms) c.setView(0, members);
  await waiting;
  t.pass();
});

test('a higher generation aborts a pending call naming the replaced partition; its old-generation data is then stale', async (t) => {
  const { bus, subjects, comms, methods, members } = group(3);
  const pending = methods[0]!.allGather('x');
  await settle();
  const next = [members[0]!, member(1, 1), members[2]!];
  for (const c of comms) c.setView(1, next);
  const e = await t.throwsAsync(pending, { instanceOf: CollectiveAbortedError });
  t.deepEqual(e.partitions, [1]);
  t.is(e.generation, 0);
  bus.publish(subjects.coll(0, 2), encode('coll', { g: 0, s: 0, a: 0, op: 'allGather', tag: 0, c: 0, n: 1, o: 0, len: 1, d: Uint8Array.of(1) }));
  await settle();
  t.is(comms[0]!.stats.stale, 1);
  t.is(comms[0]!.stats.generation, 1);
});

test('data from a peer ahead is held until the call is made; a repeat is stale, a forged sender or bad frame malformed, a different call named', async (t) => {
  const { bus, subjects, comms, methods } = group(2);
  const frame = (op: string, c = 0) => encode('coll', { g: 0, s: 0, a: 0, op, tag: 0, c, n: 1, o: 0, len: 0, d: new Uint8Array(0) });
  bus.publish(subjects.coll(0, 1), frame('barrier'));
  bus.publish(subjects.coll(0, 1), frame('barrier'));
  bus.publish(subjects.coll(0, 7), frame('barrier'));
  bus.publish(subjects.coll(0, 1), frame('barrier', 3));
  bus.publish(subjects.coll(0, 1), Uint8Array.of(1, 2, 3));
  await settle();
  t.like(comms[0]!.stats, { heldChunks: 1, stale: 1, malformed: 3 });
  // Partition 1 already sent its barrier chunk (above): partition 0's barrier completes on it alone.
  await methods[0]!.barrier();
  t.is(comms[0]!.stats.heldChunks, 0);
  bus.publish(subjects.coll(0, 1), encode('coll', { g: 0, s: 1, a: 0, op: 'broadcast', tag: 0, c: 0, n: 1, o: 0, len: 0, d: new Uint8Array(0) }));
  await settle();
  const e = await t.throwsAsync(methods[0]!.allGather(1), { instanceOf: CollectiveError });
  t.regex(e.message, /partition 1 called broadcast as call 1 of generation 0, where partition 0 called allGather/);
});

test('a ticket request over the bus is answered with the reason when this partition has no direct socket', async (t) => {
  const { bus, subjects, comms } = group(2);
  const reply = await bus.connection().request(subjects.coll(0, 1), encode('coll-ticket-get', { g: 0, a: 0 }), { timeout: 1 });
  t.deepEqual(decode(reply.subject, reply.data, ['coll-ticket']), { t: 'coll-ticket', reason: 'partition 0 has no direct socket' });
  // On a subject other than `coll.<this>.<asker>` (here, to all) it is not answered, and counted.
  const before = bus.published.length;
  bus.publish(subjects.coll('all', 1), encode('coll-ticket-get', { g: 0, a: 0 }), '_INBOX.x');
  await settle();
  t.is(bus.published.length, before + 1);
  t.is(comms[0]!.stats.malformed, 1);
});
