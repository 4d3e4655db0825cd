/**
 * What arrives for a partition's collectives, from the bus or a direct socket, checked and filed:
 * acknowledgements go to flow control, ticket requests are answered only on the subject that
 * proves who asks, and chunks are filed by generation, call and sender: held when early, dropped
 * and counted when stale, repeated, malformed or beyond the window. The partition's state and every
 * effect are injected ({@link InboundParts}), so this runs without a bus.
 */
import { decode } from '../../protocol/codec.js';
import type { MessageOf } from '../../protocol/schema.js';
import type { Member } from '../../protocol/types.js';
import type { Chunk } from './channel.js';
import type { NatsFlow } from './flow-control.js';
import type { HeldChunk } from './held-chunks.js';
import { chunkKey, type Mailbox } from './mailbox.js';
import type { CallSequence } from './sequencing.js';

/** Wire name of the header of a frame on a direct socket (for error messages; frames never travel on NATS). */
const DIRECT_SUBJECT = 'direct';

/** What the inbound side drops, by why. */
export interface InboundCounts {
  stale: number;
  malformed: number;
  overflow: number;
}

/** The partition an {@link Inbound} files for: its state, where it files, and its effects. */
export interface InboundParts {
  partition: number;
  partitions: number;
  /** The generation the partition is in (-1 before its first view). */
  generation(): number;
  members(): readonly Member[];
  seq: CallSequence;
  mailbox: Mailbox;
  flow: NatsFlow;
  counts: InboundCounts;
  /** The subject on which the server lets only `from` publish to this partition. */
  subjectFrom(from: number): string;
  /** Answers `from`'s request for a ticket (its attempt `a`, generation `g`) on `reply`. */
  answerTicket(reply: string, from: number, g: number, a: number): void;
  /** Gives a direct frame's buffer back once its chunk is done with. */
  recycle(data: Uint8Array): void;
}

/** Checks and files what arrives for one partition's collectives. */
export class Inbound {
  constructor(private readonly p: InboundParts) {}

  /** A message on the bus: `subject` ends with the sender's partition. */
  fromBus(subject: string, data: Uint8Array, reply?: string): void {
    const { p } = this;
    const token = subject.slice(subject.lastIndexOf('.') + 1);
    const from = /^(0|[1-9]\d{0,5})$/.test(token) ? Number(token) : -1;
    if (from === p.partition) return; // our own message to `all`, echoed back
    let m;
    try {
      if (from < 0 || from >= p.partitions) throw new Error('not a partition');
      m = decode(subject, data, ['coll', 'coll-ack', 'coll-ticket-get']);
    } catch {
      p.counts.malformed++;
      return;
    }
    if (m.t === 'coll-ack') return p.flow.acked(from, m.g, m.bytes);
    if (m.t === 'coll-ticket-get') {
      if (!reply || subject !== p.subjectFrom(from)) p.counts.malformed++;
      else p.answerTicket(reply, from, m.g, m.a);
      return;
    }
    // Only what may be filed counts: a message from far ahead would stop the acknowledgements of the real ones.
    const generation = p.generation();
    if (generation < 0 || m.g <= generation + 1) p.flow.received(from, m.g, data.length);
    this.accept(from, m);
  }

  /** A frame from an accepted direct socket of `from`'s attempt `attempt`. */
  fromSocket(from: number, attempt: number, header: Uint8Array, data: Uint8Array): void {
    let m;
    try {
      m = { ...decode(DIRECT_SUBJECT, header, ['coll']), d: data };
      if (m.a !== attempt) throw new Error('another attempt');
    } catch {
      this.p.counts.malformed++;
      return;
    }
    let given = false;
    this.accept(from, m, () => {
      if (given) return;
      given = true;
      this.p.recycle(data);
    });
  }

  /** Files a message of a collective call, or drops it (counted). */
  private accept(from: number, m: MessageOf<'coll'>, done?: () => void): void {
    const { p } = this;
    if (m.c >= m.n || m.o + m.d.length > m.len) {
      p.counts.malformed++;
      return;
    }
    const held: HeldChunk = { from, op: m.op, tag: m.tag, c: m.c, n: m.n, o: m.o, len: m.len, dt: m.dt, d: m.d, g: m.g, s: m.s, a: m.a, done };
    const generation = p.generation();
    if (m.g < generation) p.counts.stale++;
    else if (m.g > generation) p.mailbox.holdAhead(held);
    else this.file(held);
  }

  /** Files a chunk of the current generation for its call, or drops it (counted). */
  file(h: HeldChunk): void {
    const { p } = this;
    const sender = p.members().find((m) => m.partition === h.from);
    const standing = p.seq.standing(h.s);
    if (!sender || sender.attempt !== h.a || standing === 'stale') {
      p.counts.stale++;
      return;
    }
    if (standing === 'overflow') {
      p.counts.overflow++;
      return;
    }
    p.seq.arrive(h.s, h.from);
    const chunk: Chunk = { from: h.from, op: h.op, tag: h.tag, c: h.c, n: h.n, o: h.o, len: h.len, dt: h.dt, d: h.d, done: h.done };
    if (p.mailbox.deliver(h.s, chunkKey(h.from, h.tag, h.c), chunk) === 'repeat') p.counts.stale++;
  }
}
