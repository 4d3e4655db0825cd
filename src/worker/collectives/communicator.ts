import { CollectiveAbortedError, CollectiveError, CollectiveTimeoutError } from '../../errors.js';
import { decode, encode } from '../../protocol/codec.js';
import type { MessageOf } from '../../protocol/schema.js';
import type { Subjects } from '../../protocol/subjects.js';
import type { Member } from '../../protocol/types.js';
import type { CallChannel, Chunk } from './channel.js';
import { DirectLinks } from './direct.js';
import { makeDirectIdentity } from '../../security/direct-tls.js';
import type { HeldChunk } from './held-chunks.js';
import { alignChunk, chunksOf } from './layout.js';
import { fromWire, type WireValue } from './values.js';
import { Changes, systemClock, waitFor, type Clock } from '../../protocol/wait-for.js';
import { sendsDirect, type CollectiveTransport } from './transport-choice.js';
import { DEFAULT_CHUNK_BYTES, callSettings, type CollectiveOptions, type CollectiveStats } from './collective-options.js';
import { NatsFlow } from './flow-control.js';
import { CallSequence } from './sequencing.js';
import { Call, chunkKey, Mailbox } from './mailbox.js';
import { certOf, ticketFor } from './tickets.js';
import { allReady, notReady } from './readiness.js';

export { COLLECTIVE_TRANSPORTS, DIRECT_ALL_MAX_PARTITIONS, DIRECT_MIN_BYTES, sendsDirect, type CollectiveTransport } from './transport-choice.js';
export { DEFAULT_CHUNK_BYTES, DEFAULT_COLLECTIVE_TIMEOUT_MS, type CollectiveOptions, type CollectiveStats } from './collective-options.js';

/** Wire name of the header of a frame on a direct socket (for error messages; frames never travel on NATS). */
const DIRECT_SUBJECT = 'direct';

const EMPTY = new Uint8Array(0);

/**
 * What the communicator needs of the bus: a NATS connection, or a test's stand-in. Messages from
 * peers arrive through `subscribe`'s callback; `request` asks one peer and resolves with its reply.
 */
export interface CollectiveBus {
  readonly info?: { max_payload?: number } | undefined;
  publish(subject: string, data: Uint8Array): void;
  subscribe(
    subject: string,
    opts: { callback: (err: Error | null, msg: { subject: string; data: Uint8Array; reply?: string }) => void },
  ): { unsubscribe(): void };
  request(subject: string, data: Uint8Array, opts: { timeout: number }): Promise<{ subject: string; data: Uint8Array }>;
}

/**
 * The transport side of collectives for one partition: numbers every call within the current
 * generation, sends chunks on `coll.<to>.<from>`, and files what arrives by (call, sender, phase,
 * chunk). A message from an older generation, a replaced attempt, a finished call, or a repeat is
 * dropped and counted; one for a call this partition has not made yet (or a generation it has not
 * heard of yet) is held, within bounds. When the generation rises, every pending call rejects with
 * {@link CollectiveAbortedError} naming the partitions that failed or were replaced.
 */
export class Communicator {
  private generation = -1;
  /** The generation an elastic run computes in: a call made in any other rejects (see {@link pin}). */
  private pinned: number | undefined;
  private members: Member[] = [];
  private readonly seq = new CallSequence();
  /** Calls in progress, and chunks that arrived before their receive (of this generation or the next). */
  private readonly mailbox = new Mailbox((dropped) => (this.counts.overflow += dropped));
  private readonly viewChanges = new Changes();
  private readonly subs: { unsubscribe(): void }[] = [];
  private readonly counts = { generation: -1, stale: 0, malformed: 0, overflow: 0, directBytesSent: 0, refusedSockets: 0 };
  /** What this partition counted, and holds now. */
  get stats(): CollectiveStats {
    const held = this.mailbox.held;
    return { ...this.counts, heldChunks: held.chunks, heldBytes: held.bytes };
  }
  readonly chunkBytes: number;
  /** Every partition but this one. */
  private readonly others: number[];
  /** The transport of calls that do not name one. */
  defaultTransport: CollectiveTransport = 'auto';
  /** The bus speaks TLS: the direct sockets then do too ({@link secureDirect}), or else `'auto'` sends nothing over them. */
  busEncrypted = false;
  /** Fingerprint of this attempt's certificate, once {@link secureDirect} made it: the direct sockets speak TLS. */
  private directCert: string | undefined;
  private readonly links = new DirectLinks(
    (from, attempt, header, data) => this.receiveDirect(from, attempt, header, data),
    () => this.counts.refusedSockets++,
  );
  /** Port of the direct socket, once {@link listenDirect} opened it. */
  private peerPort: number | undefined;
  /** Flow control over NATS, for the current generation. */
  private readonly flow: NatsFlow;

  /**
   * @param nc The bus (a NATS connection).
   * @param clock Whose time counts a call's deadline (tests pass one they move).
   */
  constructor(
    private readonly nc: CollectiveBus,
    private readonly subjects: Subjects,
    readonly partition: number,
    readonly attempt: number,
    readonly partitions: number,
    chunkBytes = DEFAULT_CHUNK_BYTES,
    private readonly clock: Clock = systemClock,
  ) {
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    // Leave room for the envelope (generation, sequence, offsets…) under the server's limit.
    this.chunkBytes = alignChunk(Math.min(chunkBytes, maxPayload - 1024));
    this.others = Array.from({ length: partitions }, (_, p) => p).filter((p) => p !== partition);
    this.flow = new NatsFlow((to, g, bytes) => nc.publish(subjects.coll(to, partition), encode('coll-ack', { g, bytes })));
  }

  /** Subscribes to what peers send this partition; call before registering, so nothing is missed. */
  listen(): void {
    const callback = (err: Error | null, msg: { subject: string; data: Uint8Array; reply?: string }): void => {
      if (!err) this.receive(msg.subject, msg.data, msg.reply);
    };
    this.subs.push(this.nc.subscribe(this.subjects.coll(this.partition, '*'), { callback }));
    this.subs.push(this.nc.subscribe(this.subjects.coll('all', '*'), { callback }));
  }

  /**
   * Makes this attempt's own key and certificate, and the direct sockets speak TLS with them (call
   * before {@link listenDirect}); resolves with the certificate's fingerprint (to register). The key
   * stays in this process; peers pin the fingerprint they find in the membership.
   */
  async secureDirect(): Promise<string> {
    const identity = await makeDirectIdentity();
    this.links.secure(identity, (from, attempt) => certOf(() => this.members, this.viewChanges, from, attempt, undefined, this.clock));
    this.directCert = identity.fingerprint;
    return identity.fingerprint;
  }

  /** Opens this partition's direct socket on `host`; resolves with its port (to register). */
  async listenDirect(host: string): Promise<number> {
    this.peerPort = await this.links.listen(host, this.partitions - 1);
    return this.peerPort;
  }

  /**
   * Ties the calls that follow to `generation` (an elastic run's): in any other, every new call
   * rejects with `CollectiveAbortedError` too, not only the pending ones, so a partition that was
   * between calls when a peer was lost does not number the next generation's calls with its old
   * work. `undefined` unties.
   */
  pin(generation: number | undefined): void {
    this.pinned = generation;
  }

  /** Rejects a call made outside the pinned generation. */
  private checkPinned(op: string): void {
    if (this.pinned !== undefined && this.pinned !== this.generation) {
      throw new CollectiveAbortedError(op, [], this.pinned, `the generation rose to ${this.generation} during an elastic run`);
    }
  }

  /** Takes a membership view; a higher generation aborts every pending call. */
  setView(generation: number, members: Member[]): void {
    if (generation < this.generation) return;
    const before = this.members;
    this.members = members;
    if (generation > this.generation) {
      if (this.generation >= 0) {
        const changed = members
          .filter((m) => {
            const old = before.find((b) => b.partition === m.partition);
            return !old || old.attempt !== m.attempt || (m.state === 'failed' && old.state !== 'failed');
          })
          .map((m) => m.partition);
        const who = changed.length ? `partition(s) ${changed.join(', ')} failed or were replaced` : 'a partition failed or was replaced';
        for (const call of this.mailbox.pending())
          call.fail(new CollectiveAbortedError(call.op, changed, call.generation, `${who}; generation is now ${generation}`));
      }
      this.generation = generation;
      this.counts.generation = generation;
      // Sockets and tickets belong to the generation that ended; so does the NATS window.
      this.links.reset(generation);
      this.flow.reset(generation);
      this.seq.reset();
      for (const h of this.mailbox.enter(generation)) this.file(h);
    }
    const self = members.find((m) => m.partition === this.partition);
    if (self && self.attempt !== this.attempt) {
      for (const call of this.mailbox.pending())
        call.fail(
          new CollectiveAbortedError(call.op, [this.partition], call.generation, `attempt ${this.attempt} of partition ${this.partition} was replaced`),
        );
    }
    this.viewChanges.notify();
  }

  private receive(subject: string, data: Uint8Array, reply?: string): void {
    const token = subject.slice(subject.lastIndexOf('.') + 1);
    const from = /^(0|[1-9]\d{0,5})$/.test(token) ? Number(token) : -1;
    if (from === this.partition) return; // our own message to `all`, echoed back
    let m;
    try {
      if (from < 0 || from >= this.partitions) throw new Error('not a partition');
      m = decode(subject, data, ['coll', 'coll-ack', 'coll-ticket-get']);
    } catch {
      this.counts.malformed++;
      return;
    }
    if (m.t === 'coll-ack') return this.flow.acked(from, m.g, m.bytes);
    if (m.t === 'coll-ticket-get') {
      // Only on `coll.<this>.<from>`, where the server let no one but `from` publish.
      if (!reply || subject !== this.subjects.coll(this.partition, from)) this.counts.malformed++;
      else this.nc.publish(reply, encode('coll-ticket', this.ticketFor(from, m.g, m.a)));
      return;
    }
    // Only what may be filed counts: a message from far ahead would stop the acknowledgements of the real ones.
    if (this.generation < 0 || m.g <= this.generation + 1) this.flow.received(from, m.g, data.length);
    this.accept(from, m);
  }

  /** A frame from an accepted direct socket of `from`'s attempt `attempt`. */
  private receiveDirect(from: number, attempt: number, header: Uint8Array, data: Uint8Array): void {
    let m;
    try {
      m = { ...decode(DIRECT_SUBJECT, header, ['coll']), d: data };
      if (m.a !== attempt) throw new Error('another attempt');
    } catch {
      this.counts.malformed++;
      return;
    }
    let given = false;
    this.accept(from, m, () => {
      if (given) return;
      given = true;
      this.links.recycle(data);
    });
  }

  private ticketFor(from: number, g: number, a: number): { ticket?: string; reason?: string } {
    const state = {
      partition: this.partition,
      generation: this.generation,
      members: this.members,
      peerPort: this.peerPort,
      busEncrypted: this.busEncrypted,
      directCert: this.directCert,
    };
    return ticketFor(state, from, g, a, () => this.links.grant(from, a, g));
  }

  /** Files a message of a collective call, or drops it (counted). */
  private accept(from: number, m: MessageOf<'coll'>, done?: () => void): void {
    if (m.c >= m.n || m.o + m.d.length > m.len) {
      this.counts.malformed++;
      return;
    }
    const held: HeldChunk = { from, op: m.op, tag: m.tag, c: m.c, n: m.n, o: m.o, len: m.len, dt: m.dt, d: m.d, g: m.g, s: m.s, a: m.a, done };
    if (m.g < this.generation) this.counts.stale++;
    else if (m.g > this.generation) this.mailbox.holdAhead(held);
    else this.file(held);
  }

  /** Files a chunk of the current generation for its call, or drops it (counted). */
  private file(h: HeldChunk): void {
    const sender = this.members.find((m) => m.partition === h.from);
    const standing = this.seq.standing(h.s);
    if (!sender || sender.attempt !== h.a || standing === 'stale') {
      this.counts.stale++;
      return;
    }
    if (standing === 'overflow') {
      this.counts.overflow++;
      return;
    }
    this.seq.arrive(h.s, h.from);
    const chunk: Chunk = { from: h.from, op: h.op, tag: h.tag, c: h.c, n: h.n, o: h.o, len: h.len, dt: h.dt, d: h.d, done: h.done };
    if (this.mailbox.deliver(h.s, chunkKey(h.from, h.tag, h.c), chunk) === 'repeat') this.counts.stale++;
  }

  private isReady(): boolean {
    return allReady(this.members, this.partitions, this.partition, this.attempt);
  }

  private waitReady(deadline: number, op: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    // A view that comes while waiting and shows another attempt of this partition ends the wait.
    let waiting = false;
    const ready = (): boolean => {
      const self = this.members.find((m) => m.partition === this.partition);
      if (waiting && self && self.attempt !== this.attempt) {
        throw new CollectiveAbortedError(op, [this.partition], this.generation, `attempt ${this.attempt} of partition ${this.partition} was replaced`);
      }
      if (this.isReady()) return true;
      waiting = true;
      return false;
    };
    return waitFor(ready, {
      changes: this.viewChanges,
      timeoutMs: Math.max(0, deadline - this.clock.now()),
      signal,
      clock: this.clock,
      onTimeout: () => {
        const missing = notReady(this.members, this.partitions);
        return new CollectiveTimeoutError(op, timeoutMs, missing, `partition(s) ${missing.join(', ')} not serving in generation ${this.generation}`);
      },
    }).then(() => {});
  }

  /**
   * Runs one collective call: waits until every partition's current attempt is up, takes the next
   * sequence number of the generation, and runs `body` on a channel bound to the call. Rejects on
   * timeout (naming who never arrived), abort signal, or a generation change.
   */
  async run<T>(op: string, expect: number[], opts: CollectiveOptions, body: (ch: CallChannel) => Promise<T>): Promise<T> {
    const { timeoutMs, transport } = callSettings(op, opts, this.defaultTransport);
    if (this.generation < 0) {
      throw new CollectiveError(
        'SPS_COLLECTIVE_STATE',
        op,
        `partition ${this.partition} is not registered yet: collectives work once initPartition has finished`,
      );
    }
    opts.signal?.throwIfAborted();
    this.checkPinned(op);
    const deadline = this.clock.now() + timeoutMs;
    // The hot path (everyone up) does not wait a turn of the event loop.
    if (!this.isReady()) {
      await this.waitReady(deadline, op, timeoutMs, opts.signal);
      // Aborted while waiting for peers, or right after (before a listener could hear it).
      opts.signal?.throwIfAborted();
    }
    this.checkPinned(op);
    const call = new Call(op, this.generation, this.seq.next(), expect);
    this.mailbox.open(call);
    const timer = this.clock.setTimeout(() => call.fail(this.timeoutError(call, timeoutMs)), Math.max(0, deadline - this.clock.now()));
    const onAbort = (): void => call.fail(opts.signal!.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const flushes: Promise<void>[] = [];
      const work = body(this.channel(call, transport, flushes));
      work.catch(() => {});
      const result = await Promise.race([work, call.failed]);
      // Bytes still queued on a direct socket are views of the caller's arrays: they must be gone before the caller may reuse them.
      if (flushes.length) await Promise.race([Promise.all(flushes), call.failed]);
      return result;
    } catch (err) {
      call.fail(err);
      throw err;
    } finally {
      this.clock.clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      this.end(call);
    }
  }

  private timeoutError(call: Call, timeoutMs: number): CollectiveTimeoutError {
    const never = this.seq.neverArrived(call.seq, call.expect);
    const pending = call.pendingSenders();
    const missing = never.length ? never : pending;
    const detail = never.length ? `partition(s) ${never.join(', ')} never arrived` : `partition(s) ${pending.join(', ')} sent only part of their data`;
    return new CollectiveTimeoutError(
      call.op,
      timeoutMs,
      missing,
      `${detail} (call ${call.seq} of generation ${call.generation} on partition ${this.partition})`,
    );
  }

  private end(call: Call): void {
    const current = call.generation === this.generation;
    this.mailbox.close(call, current);
    if (current) this.seq.end(call.seq);
  }

  /** Asks `peer` over NATS (whose subject proves who asks) for a one-time ticket to its direct socket. */
  private async ticket(peer: number, call: Call): Promise<string> {
    const msg = await this.nc.request(this.subjects.coll(peer, this.partition), encode('coll-ticket-get', { g: call.generation, a: this.attempt }), {
      timeout: 10_000,
    });
    const r = decode(msg.subject, msg.data, ['coll-ticket']);
    if (!r.ticket) throw new CollectiveError('SPS_COLLECTIVE_DIRECT', call.op, `partition ${peer} refused a direct socket: ${r.reason ?? 'no reason given'}`);
    return r.ticket;
  }

  private channel(call: Call, transport: CollectiveTransport, flushes: Promise<void>[]): CallChannel {
    const others = this.others;
    const overNats = async (to: number | 'all', data: Uint8Array): Promise<void> => {
      const targets = to === 'all' ? others : [to];
      const wait = this.flow.credit(targets, data.length);
      if (wait) await Promise.race([wait, call.failed]);
      if (call.error !== undefined) throw call.error;
      this.flow.sent(targets, data.length);
      this.nc.publish(this.subjects.coll(to, this.partition), data);
    };
    const direct = async (to: number, fields: MessageOf<'coll'>): Promise<void> => {
      const peer = this.members.find((m) => m.partition === to);
      // A peer without a direct socket (none opened, or an older version) still hears over NATS.
      if (!peer?.peerPort) return overNats(to, encode('coll', fields));
      // A peer whose socket cannot be opened (a firewall, a refused ticket, a peer that is gone) is sent to over NATS.
      const sock = await Promise.race([
        this.links.socketTo(to, peer.host, peer.peerPort, () => this.ticket(to, call), peer.peerCert).catch(() => undefined),
        call.failed,
      ]);
      if (call.error !== undefined) throw call.error;
      if (!sock) return overNats(to, encode('coll', fields));
      // Bytes lost on a socket that broke mean the peer is gone or going: the generation change
      // that follows aborts the call (naming it), or else its timeout does; the socket error never does.
      const unreachable = (): Promise<never> => call.failed;
      // No wait for the socket to drain: what is queued are views of the call's own arrays (no
      // copy), so the queue is bounded by the value, and the next chunk goes out without a turn
      // of the event loop per chunk (measured: allReduce of 1M float32 ~60 → ~50 ms).
      const flushed = DirectLinks.write(sock, encode('coll', { ...fields, d: EMPTY }), fields.d).catch(unreachable);
      // A call that fails before it waits for its flushes must not leave their rejections unhandled: that ends the process.
      flushed.catch(() => {});
      flushes.push(flushed);
      this.counts.directBytesSent += fields.d.length;
    };
    const send = async (to: number | 'all', tag: number, k: Omit<Chunk, 'from' | 'op' | 'tag'>): Promise<void> => {
      if (call.error !== undefined) throw call.error;
      const base = { g: call.generation, s: call.seq, a: this.attempt, op: call.op, tag, c: k.c, n: k.n, o: k.o, len: k.len, d: k.d };
      const fields = k.dt ? { ...base, dt: k.dt } : base;
      if (!sendsDirect(transport, k.len, this.partitions, this.busEncrypted && this.directCert === undefined)) return overNats(to, encode('coll', fields));
      if (to !== 'all') return direct(to, fields);
      await Promise.all(others.map((p) => direct(p, fields)));
    };
    const recvChunk = (from: number, tag: number, c: number): Promise<Chunk> =>
      this.mailbox.take(call, chunkKey(from, tag, c)).then((chunk) => {
        if (chunk.op !== call.op) {
          throw new CollectiveError(
            'SPS_COLLECTIVE_MISMATCH',
            call.op,
            `partition ${from} called ${chunk.op} as call ${call.seq} of generation ${call.generation}, where partition ${this.partition} called ${call.op}: every partition must make the same calls in the same order`,
          );
        }
        return chunk;
      });
    const chunkBytes = this.chunkBytes;
    return {
      rank: this.partition,
      size: this.partitions,
      chunkBytes,
      op: call.op,
      sendChunk: send,
      send: async (to, tag, w: WireValue) => {
        const chunks = chunksOf(w.bytes.length, chunkBytes);
        for (let c = 0; c < chunks.length; c++) {
          const k = chunks[c]!;
          await send(to, tag, { c, n: chunks.length, o: k.start, len: w.bytes.length, dt: w.kind, d: w.bytes.subarray(k.start, k.end) });
        }
      },
      recvChunk,
      recvValue: async (from, tag) => {
        const first = await recvChunk(from, tag, 0);
        if (first.n === 1) return fromWire({ bytes: first.d, kind: first.dt });
        const bytes = new Uint8Array(first.len);
        bytes.set(first.d, first.o);
        const rest = await Promise.all(Array.from({ length: first.n - 1 }, (_, i) => recvChunk(from, tag, i + 1)));
        for (const k of rest) {
          if (k.len !== first.len || k.n !== first.n || k.dt !== first.dt)
            throw new CollectiveError('SPS_COLLECTIVE_MISMATCH', call.op, `partition ${from} sent chunks of different values`);
          bytes.set(k.d, k.o);
          k.done?.();
        }
        first.done?.();
        return fromWire({ bytes, kind: first.dt });
      },
    };
  }

  /** Stops listening; pending calls reject. */
  close(): void {
    this.links.close();
    for (const s of this.subs) s.unsubscribe();
    for (const call of this.mailbox.pending()) call.fail(new CollectiveError('SPS_COLLECTIVE_STATE', call.op, `partition ${this.partition} is shutting down`));
  }
}
