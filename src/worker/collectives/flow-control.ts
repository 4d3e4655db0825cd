/**
 * Flow control of collective data over NATS: a sender keeps at most {@link NATS_WINDOW_BYTES}
 * unacknowledged per peer, and a receiver acknowledges every {@link ACK_EVERY_BYTES} it received
 * from one sender. Effects are injected (the acknowledgement is sent through `sendAck`), so the
 * bookkeeping runs without a bus.
 */
import { Changes, waitFor } from '../../protocol/wait-for.js';

/**
 * Unacknowledged bytes a partition may have sent one peer over NATS: with n−1 senders nats-server
 * holds at most (n−1)× this for a receiver, far below its per-client pending limit.
 */
export const NATS_WINDOW_BYTES = 4 * 1024 * 1024;
/** A receiver acknowledges after this many bytes from one sender. */
export const ACK_EVERY_BYTES = 512 * 1024;

/** One partition's NATS windows: what it sent each peer and they acknowledged, and what it received from each. */
export class NatsFlow {
  /** The generation the windows belong to: sent and acknowledged bytes start over with each. */
  private generation = -1;
  private sentTo = new Map<number, number>();
  private ackedBy = new Map<number, number>();
  private readonly changes = new Changes();
  /** Bytes received from each sender, by the generation they were sent in, and how many were acknowledged. */
  private readonly receivedFrom = new Map<number, { g: number; bytes: number; acked: number }>();

  /**
   * @param sendAck Acknowledges to sender `to` that `bytes` of generation `g` arrived in all.
   * @param windowBytes The window per peer (tests use a small one).
   * @param ackEveryBytes How often a receiver acknowledges.
   */
  constructor(
    private readonly sendAck: (to: number, g: number, bytes: number) => void,
    private readonly windowBytes = NATS_WINDOW_BYTES,
    private readonly ackEveryBytes = ACK_EVERY_BYTES,
  ) {}

  /** A new generation: the windows start empty, and every sender waiting for credit goes on (its call aborts). */
  reset(generation: number): void {
    this.generation = generation;
    this.sentTo = new Map();
    this.ackedBy = new Map();
    // A count for a generation further ahead (never sent by a real peer) must not stop the acknowledgements.
    for (const [p, r] of this.receivedFrom) if (r.g > generation + 1) this.receivedFrom.delete(p);
    this.changes.notify();
  }

  /** Whether `bytes` more fit in the window of every peer in `to` (an empty window takes anything). */
  fits(to: readonly number[], bytes: number): boolean {
    return to.every((p) => {
      const out = (this.sentTo.get(p) ?? 0) - (this.ackedBy.get(p) ?? 0);
      return out === 0 || out + bytes <= this.windowBytes;
    });
  }

  /** Resolves when `bytes` more fit in the window of every peer in `to`, or the generation changed; `undefined` when they fit now. */
  credit(to: readonly number[], bytes: number): Promise<void> | undefined {
    if (this.fits(to, bytes)) return undefined;
    const generation = this.generation;
    return waitFor(() => generation !== this.generation || this.fits(to, bytes), { changes: this.changes }).then(() => {});
  }

  /** Counts `bytes` sent to each peer in `to`. */
  sent(to: readonly number[], bytes: number): void {
    for (const p of to) this.sentTo.set(p, (this.sentTo.get(p) ?? 0) + bytes);
  }

  /** `from` acknowledged `bytes` in all of generation `g`; an old or repeated acknowledgement changes nothing. */
  acked(from: number, g: number, bytes: number): void {
    if (g !== this.generation || bytes <= (this.ackedBy.get(from) ?? 0)) return;
    this.ackedBy.set(from, bytes);
    this.changes.notify();
  }

  /** Counts bytes from `from` sent in generation `g`, and acknowledges them every {@link ACK_EVERY_BYTES}. */
  received(from: number, g: number, bytes: number): void {
    let r = this.receivedFrom.get(from);
    if (!r || r.g < g) this.receivedFrom.set(from, (r = { g, bytes: 0, acked: 0 }));
    if (r.g !== g) return;
    r.bytes += bytes;
    if (r.bytes - r.acked >= this.ackEveryBytes) {
      r.acked = r.bytes;
      this.sendAck(from, g, r.bytes);
    }
  }
}
