/**
 * Where the chunks of collective calls meet their receives: a chunk that arrives for a receive
 * already waiting resolves it; one that comes first is held (bounded, see {@link HeldChunks}) until
 * its receive takes it. A call that fails rejects every receive still waiting. No effects besides
 * the promises it settles.
 */
import type { Chunk } from './channel.js';
import { HeldChunks, type Filed, type HeldChunk } from './held-chunks.js';

type Waiter = { resolve: (c: Chunk) => void; reject: (e: unknown) => void };

/** One collective call in progress: its receives waiting, and how it failed, if it did. */
export class Call {
  readonly waiters = new Map<string, Waiter>();
  error: unknown;
  fail!: (e: unknown) => void;
  /** Rejects with the call's first failure; never resolves. */
  readonly failed = new Promise<never>((_, reject) => {
    this.fail = (e) => {
      if (this.error !== undefined) return;
      this.error = e;
      for (const w of this.waiters.values()) w.reject(e);
      this.waiters.clear();
      reject(e);
    };
  });
  constructor(
    readonly op: string,
    readonly generation: number,
    readonly seq: number,
    readonly expect: number[],
  ) {
    this.failed.catch(() => {});
  }

  /** The senders this call still waits for a chunk of, in order. */
  pendingSenders(): number[] {
    return [...new Set([...this.waiters.keys()].map((k) => Number(k.split('/')[0])))].sort((a, b) => a - b);
  }
}

/** The key of chunk `c` of message `tag` from `from` within one call. */
export function chunkKey(from: number, tag: number, c: number): string {
  return `${from}/${tag}/${c}`;
}

/** Where a chunk delivered for a call went: to a waiting receive, or as {@link HeldChunks.file} says. */
export type Delivered = 'received' | Filed;

/** The calls of one partition in progress, and the chunks held for receives not made yet. */
export class Mailbox {
  private readonly calls = new Map<number, Call>();
  readonly held: HeldChunks;

  /** @param onOverflow Counts chunks dropped for want of room. */
  constructor(onOverflow: (dropped: number) => void) {
    this.held = new HeldChunks(onOverflow);
  }

  /** The calls in progress. */
  pending(): IterableIterator<Call> {
    return this.calls.values();
  }

  /** Starts taking chunks for `call`. */
  open(call: Call): void {
    this.calls.set(call.seq, call);
  }

  /** `call` is over; `current`: it is of the generation this partition is in, so what was held for it goes too. */
  close(call: Call, current: boolean): void {
    this.calls.delete(call.seq);
    if (current) this.held.endCall(call.seq);
  }

  /** Gives chunk `key` of call `s` (of the current generation) to its waiting receive, or holds it. */
  deliver(s: number, key: string, chunk: Chunk): Delivered {
    const call = this.calls.get(s);
    const waiter = call?.waiters.get(key);
    if (waiter) {
      call!.waiters.delete(key);
      waiter.resolve(chunk);
      return 'received';
    }
    return this.held.file(s, key, chunk);
  }

  /** Holds a chunk of a generation this partition has not entered yet. */
  holdAhead(h: HeldChunk): void {
    this.held.holdAhead(h);
  }

  /** Enters `generation`: resolves with the chunks held for it, to deliver again. */
  enter(generation: number): HeldChunk[] {
    return this.held.enter(generation);
  }

  /** The chunk `key` of `call`: held already, or the next to arrive; rejects when the call fails. */
  take(call: Call, key: string): Promise<Chunk> {
    if (call.error !== undefined) return Promise.reject(call.error as Error);
    const held = this.held.take(call.seq, key);
    if (held) return Promise.resolve(held);
    return new Promise<Chunk>((resolve, reject) => call.waiters.set(key, { resolve, reject }));
  }
}
