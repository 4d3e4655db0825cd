/**
 * How one chunk of a collective call leaves this partition: the transport choice
 * (transport-choice.ts) picks NATS or the direct sockets; over NATS it waits for flow-control
 * credit (flow-control.ts); a peer that has no direct socket, or whose socket cannot be opened,
 * hears over NATS instead. The bus and the sockets are injected ({@link ChunkLinks}), so this runs
 * without either.
 */
import { encode } from '../../protocol/codec.js';
import type { MessageOf } from '../../protocol/schema.js';
import type { Chunk } from './channel.js';
import type { NatsFlow } from './flow-control.js';
import type { Call } from './mailbox.js';
import { sendsDirect, type CollectiveTransport } from './transport-choice.js';

const EMPTY = new Uint8Array(0);

/** Where chunks go out: the bus, and direct sockets of type `S`. */
export interface ChunkLinks<S> {
  /** Publishes collective data to partition `to` (or all) on the bus. */
  publish(to: number | 'all', data: Uint8Array): void;
  /** The open direct socket to `to` for `call`; `undefined` when there is none to use (the chunk then goes over NATS). */
  socketTo(to: number, call: Call): Promise<S | undefined>;
  /** Queues one frame on `sock` without copying `data`; resolves once its bytes left this process. */
  write(sock: S, header: Uint8Array, data: Uint8Array): Promise<void>;
}

/** What a {@link ChunkSender} knows of its partition. */
export interface SenderState {
  partition: number;
  attempt: number;
  partitions: number;
  /** The bus speaks TLS but the direct sockets do not: `'auto'` keeps to NATS. */
  clearOnTlsBus(): boolean;
  /** Counts bytes sent over direct sockets. */
  sentDirect(bytes: number): void;
}

/** One call's sending side: its chunk sender, and the flushes its direct writes must finish before the call ends. */
export interface CallSending {
  sendChunk(to: number | 'all', tag: number, k: Omit<Chunk, 'from' | 'op' | 'tag'>): Promise<void>;
  /** Direct writes still leaving this process: views of the caller's arrays. */
  readonly flushes: Promise<void>[];
}

/** Sends the chunks of one partition's calls. */
export class ChunkSender<S> {
  /** Every partition but this one. */
  private readonly others: number[];

  constructor(
    private readonly state: SenderState,
    private readonly links: ChunkLinks<S>,
    private readonly flow: NatsFlow,
  ) {
    this.others = Array.from({ length: state.partitions }, (_, p) => p).filter((p) => p !== state.partition);
  }

  /** The sending side of `call`, over `transport`. */
  forCall(call: Call, transport: CollectiveTransport): CallSending {
    const flushes: Promise<void>[] = [];
    const { state, others } = this;
    const sendChunk = async (to: number | 'all', tag: number, k: Omit<Chunk, 'from' | 'op' | 'tag'>): Promise<void> => {
      if (call.error !== undefined) throw call.error;
      const base = { g: call.generation, s: call.seq, a: state.attempt, op: call.op, tag, c: k.c, n: k.n, o: k.o, len: k.len, d: k.d };
      const fields = k.dt ? { ...base, dt: k.dt } : base;
      if (!sendsDirect(transport, k.len, state.partitions, state.clearOnTlsBus())) return this.overNats(call, to, encode('coll', fields));
      if (to !== 'all') return this.direct(call, to, fields, flushes);
      await Promise.all(others.map((p) => this.direct(call, p, fields, flushes)));
    };
    return { sendChunk, flushes };
  }

  /** Publishes once every target's window has room; rejects when the call fails meanwhile. */
  private async overNats(call: Call, to: number | 'all', data: Uint8Array): Promise<void> {
    const targets = to === 'all' ? this.others : [to];
    const wait = this.flow.credit(targets, data.length);
    if (wait) await Promise.race([wait, call.failed]);
    if (call.error !== undefined) throw call.error;
    this.flow.sent(targets, data.length);
    this.links.publish(to, data);
  }

  private async direct(call: Call, to: number, fields: MessageOf<'coll'>, flushes: Promise<void>[]): Promise<void> {
    const sock = await Promise.race([this.links.socketTo(to, call).catch(() => undefined), call.failed]);
    if (call.error !== undefined) throw call.error;
    if (sock === undefined) return this.overNats(call, to, encode('coll', fields));
    // Bytes lost on a socket that broke mean the peer is gone or going: the generation change
    // that follows aborts the call (naming it), or else its timeout does; the socket error never does.
    const unreachable = (): Promise<never> => call.failed;
    // No wait for the socket to drain: what is queued are views of the call's own arrays (no
    // copy), so the queue is bounded by the value, and the next chunk goes out without a turn
    // of the event loop per chunk.
    const flushed = this.links.write(sock, encode('coll', { ...fields, d: EMPTY }), fields.d).catch(unreachable);
    // A call that fails before it waits for its flushes must not leave their rejections unhandled: that ends the process.
    flushed.catch(() => {});
    flushes.push(flushed);
    this.state.sentDirect(fields.d.length);
  }
}
