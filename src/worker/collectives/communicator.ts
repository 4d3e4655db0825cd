import { CollectiveAbortedError, CollectiveError, CollectiveTimeoutError } from '../../errors.js';
import { encode } from '../../protocol/codec.js';
import type { Subjects } from '../../protocol/subjects.js';
import type { Member } from '../../protocol/types.js';
import type { Socket } from 'node:net';
import type { CallChannel } from './channel.js';
import { DirectLinks } from './direct.js';
import { makeDirectIdentity } from '../../security/direct-tls.js';
import { alignChunk } from './layout.js';
import { Changes, systemClock, type Clock } from '../../protocol/wait-for.js';
import type { CollectiveTransport } from './transport-choice.js';
import { DEFAULT_CHUNK_BYTES, callSettings, checkCallOptions, type CollectiveOptions, type CollectiveStats } from './collective-options.js';
import { NatsFlow } from './flow-control.js';
import { CallSequence } from './sequencing.js';
import { Call, Mailbox } from './mailbox.js';
import { certOf, requestTicket, ticketFor } from './tickets.js';
import { allReady, waitReady, type ReadinessView } from './readiness.js';
import { callChannel } from './call-channel.js';
import { ChunkSender } from './chunk-sender.js';
import { superviseCall } from './call-run.js';
import { Inbound } from './inbound.js';

/** Rises of the generation a communicator remembers (only a call's start, a few turns of the event loop, looks back at them). */
const MAX_RISES_KEPT = 16;

export { COLLECTIVE_TRANSPORTS, DIRECT_ALL_MAX_PARTITIONS, DIRECT_MIN_BYTES, sendsDirect, type CollectiveTransport } from './transport-choice.js';
export { DEFAULT_CHUNK_BYTES, DEFAULT_COLLECTIVE_TIMEOUT_MS, type CollectiveOptions, type CollectiveStats } from './collective-options.js';

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
 * The transport side of collectives for one partition, composed of its parts: it numbers every
 * call within the current generation (sequencing.ts), runs each on a channel (call-channel.ts,
 * call-run.ts) whose chunks leave by chunk-sender.ts and arrive through inbound.ts into the
 * mailbox (mailbox.ts). A message from an older generation, a replaced attempt, a finished call,
 * or a repeat is dropped and counted; one for a call this partition has not made yet (or a
 * generation it has not heard of yet) is held, within bounds. When the generation rises, every
 * pending call rejects with {@link CollectiveAbortedError} naming the partitions that failed or
 * were replaced.
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
  /** The last rises of the generation, with the partitions that failed or were replaced in each (see {@link abortedSince}). */
  private readonly rises: { generation: number; changed: number[] }[] = [];
  private readonly subs: { unsubscribe(): void }[] = [];
  private readonly counts = { generation: -1, stale: 0, malformed: 0, overflow: 0, directBytesSent: 0, refusedSockets: 0 };
  /** What this partition counted, and holds now. */
  get stats(): CollectiveStats {
    const held = this.mailbox.held;
    return { ...this.counts, heldChunks: held.chunks, heldBytes: held.bytes };
  }
  readonly chunkBytes: number;
  /** The transport of calls that do not name one. */
  defaultTransport: CollectiveTransport = 'auto';
  /** The bus speaks TLS: the direct sockets then do too ({@link secureDirect}), or else `'auto'` sends nothing over them. */
  busEncrypted = false;
  /** Fingerprint of this attempt's certificate, once {@link secureDirect} made it: the direct sockets speak TLS. */
  private directCert: string | undefined;
  private readonly links = new DirectLinks(
    (from, attempt, header, data) => this.inbound.fromSocket(from, attempt, header, data),
    () => this.counts.refusedSockets++,
  );
  /** Port of the direct socket, once {@link listenDirect} opened it. */
  private peerPort: number | undefined;
  /** Flow control over NATS, for the current generation. */
  private readonly flow: NatsFlow;
  /** How chunks leave: NATS or a direct socket, per call's transport. */
  private readonly sender: ChunkSender<Socket>;
  /** Where what arrives is checked and filed. */
  private readonly inbound: Inbound;
  /** What waiting for every partition to be up reads of this one. */
  private readonly readiness: ReadinessView;

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
    this.flow = new NatsFlow((to, g, bytes) => nc.publish(subjects.coll(to, partition), encode('coll-ack', { g, bytes })));
    const state = {
      partition,
      attempt,
      partitions,
      clearOnTlsBus: () => this.busEncrypted && this.directCert === undefined,
      sentDirect: (bytes: number) => (this.counts.directBytesSent += bytes),
    };
    const links = {
      publish: (to: number | 'all', data: Uint8Array) => nc.publish(subjects.coll(to, partition), data),
      socketTo: (to: number, call: Call) => this.socketTo(to, call),
      write: (sock: Socket, header: Uint8Array, data: Uint8Array) => DirectLinks.write(sock, header, data),
    };
    this.sender = new ChunkSender(state, links, this.flow);
    this.inbound = new Inbound({
      partition,
      partitions,
      generation: () => this.generation,
      members: () => this.members,
      seq: this.seq,
      mailbox: this.mailbox,
      flow: this.flow,
      counts: this.counts,
      subjectFrom: (from) => subjects.coll(partition, from),
      answerTicket: (reply, from, g, a) => nc.publish(reply, encode('coll-ticket', this.ticketFor(from, g, a))),
      recycle: (data) => this.links.recycle(data),
    });
    this.readiness = { members: () => this.members, generation: () => this.generation, changes: this.viewChanges, partitions, partition, attempt, clock };
  }

  /** Subscribes to what peers send this partition; call before registering, so nothing is missed. */
  listen(): void {
    const callback = (err: Error | null, msg: { subject: string; data: Uint8Array; reply?: string }): void => {
      if (!err) this.inbound.fromBus(msg.subject, msg.data, msg.reply);
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
        this.rises.push({ generation, changed });
        if (this.rises.length > MAX_RISES_KEPT) this.rises.shift();
      }
      this.generation = generation;
      this.counts.generation = generation;
      // Sockets and tickets belong to the generation that ended; so does the NATS window.
      this.links.reset(generation);
      this.flow.reset(generation);
      this.seq.reset();
      for (const h of this.mailbox.enter(generation)) this.inbound.file(h);
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

  /**
   * Runs one collective call: waits until every partition's current attempt is up, takes the next
   * sequence number of the generation, and runs `body` on a channel bound to the call. Rejects on
   * timeout (naming who never arrived), abort signal, or a generation change.
   */
  async run<T>(op: string, expect: number[], opts: CollectiveOptions, body: (ch: CallChannel) => Promise<T>): Promise<T> {
    // A call made with every partition up belongs to this generation, even while its options are
    // checked (the first call given options loads their schema): a rise meanwhile ends it, as it
    // ends a call under way. (A call made before everyone was up waits for them, in whatever
    // generation they come up in.)
    const calledIn = this.generation;
    const readyAtCall = calledIn >= 0 && allReady(this.members, this.partitions, this.partition, this.attempt);
    const checking = checkCallOptions(op, opts);
    if (checking) {
      await checking;
      if (readyAtCall && this.generation !== calledIn) throw this.abortedSince(op, calledIn);
    }
    const { timeoutMs, transport } = callSettings(opts, this.defaultTransport);
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
    if (!allReady(this.members, this.partitions, this.partition, this.attempt)) {
      await waitReady(this.readiness, op, timeoutMs, deadline, opts.signal);
      // Aborted while waiting for peers, or right after (before a listener could hear it).
      opts.signal?.throwIfAborted();
    }
    this.checkPinned(op);
    const call = new Call(op, this.generation, this.seq.next(), expect);
    this.mailbox.open(call);
    const { sendChunk, flushes } = this.sender.forCall(call, transport);
    const channel = callChannel(call, {
      rank: this.partition,
      size: this.partitions,
      chunkBytes: this.chunkBytes,
      sendChunk,
      take: (c, key) => this.mailbox.take(c, key),
    });
    const bounds = { clock: this.clock, deadline, signal: opts.signal, timeoutError: () => this.timeoutError(call, timeoutMs) };
    try {
      return await superviseCall(call, bounds, () => body(channel), flushes);
    } finally {
      this.end(call);
    }
  }

  /** The abort of a call made in `generation`, naming the partitions that failed or were replaced since. */
  private abortedSince(op: string, generation: number): CollectiveAbortedError {
    const changed = [...new Set(this.rises.filter((r) => r.generation > generation).flatMap((r) => r.changed))].sort((a, b) => a - b);
    const who = changed.length ? `partition(s) ${changed.join(', ')} failed or were replaced` : 'a partition failed or was replaced';
    return new CollectiveAbortedError(op, changed, generation, `${who}; generation is now ${this.generation}`);
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

  /** The direct socket to `to` for `call`; `undefined` when the peer has none (an older version, or none opened). */
  private socketTo(to: number, call: Call): Promise<Socket | undefined> {
    const peer = this.members.find((m) => m.partition === to);
    if (!peer?.peerPort) return Promise.resolve(undefined);
    // The subject proves who asks.
    const ask = (data: Uint8Array, timeout: number) => this.nc.request(this.subjects.coll(to, this.partition), data, { timeout });
    return this.links.socketTo(to, peer.host, peer.peerPort, () => requestTicket(ask, to, call.generation, this.attempt, call.op), peer.peerCert);
  }

  /** Stops listening; pending calls reject. */
  close(): void {
    this.links.close();
    for (const s of this.subs) s.unsubscribe();
    for (const call of this.mailbox.pending()) call.fail(new CollectiveError('SPS_COLLECTIVE_STATE', call.op, `partition ${this.partition} is shutting down`));
  }
}
