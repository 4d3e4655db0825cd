import type { Chunk } from './channel.js';

/** A chunk with the generation, call and attempt it was sent in. */
export type HeldChunk = Chunk & { g: number; s: number; a: number };

/** Bytes held for calls a partition has not reached yet (its own or a peer's data arriving early), payloads and overhead. */
export const HOLD_BYTES = 512 * 1024 * 1024;
/**
 * Chunks held at once. A peer may run ahead by many small calls (a root broadcasting in a loop,
 * senders of a gather), so this is generous; what it stops is a flood of empty messages, which
 * cost their bookkeeping and nothing else.
 */
export const HOLD_CHUNKS = 32 * 1024;
/**
 * What one held chunk costs besides its bytes: its record, key and map entry. Measured: a million
 * empty held messages grew the heap by 501 MiB, about this much each.
 */
export const HELD_CHUNK_OVERHEAD = 512;

/** Where a chunk filed for a call went. */
export type Filed = 'held' | 'repeat' | 'overflow';

/**
 * The chunks one partition holds because they came before it asked for them: those of the
 * generation it is in, by call and key, and those of the next generation (a peer heard of it
 * first). Bounded in chunks and in bytes, each chunk costing {@link HELD_CHUNK_OVERHEAD} on top of
 * its payload. When full, the chunks needed latest make room: the next generation's, then those of
 * the latest call; a chunk needed no sooner than everything held is dropped. Every chunk dropped
 * is counted through `onOverflow`.
 */
export class HeldChunks {
  /** Chunks that arrived before their receive, by call and key. */
  private readonly boxes = new Map<number, Map<string, Chunk>>();
  /** Chunks of the next generation (of any, before the first). */
  private next: HeldChunk[] = [];
  private generation = -1;
  /** Chunks held, and their cost in bytes. */
  chunks = 0;
  bytes = 0;

  constructor(private readonly onOverflow: (dropped: number) => void) {}

  /** Holds a chunk of a generation this partition has not entered; false if dropped (counted). */
  holdAhead(h: HeldChunk): boolean {
    if (this.generation >= 0 && h.g > this.generation + 1) {
      this.onOverflow(1);
      return false;
    }
    if (!this.makeRoom(h.d.length, Infinity)) return false;
    this.next.push(h);
    this.add(h);
    return true;
  }

  /** Holds chunk `key` of call `s` of the current generation until its receive takes it. */
  file(s: number, key: string, chunk: Chunk): Filed {
    let box = this.boxes.get(s);
    if (box?.has(key)) return 'repeat';
    if (!this.makeRoom(chunk.d.length, s)) return 'overflow';
    // Making room may have emptied this call's box.
    box = this.boxes.get(s);
    if (!box) this.boxes.set(s, (box = new Map()));
    box.set(key, chunk);
    this.add(chunk);
    return 'held';
  }

  /** Takes chunk `key` of call `s`, if held. */
  take(s: number, key: string): Chunk | undefined {
    const box = this.boxes.get(s);
    const chunk = box?.get(key);
    if (!chunk) return undefined;
    box!.delete(key);
    if (box!.size === 0) this.boxes.delete(s);
    this.remove(chunk);
    return chunk;
  }

  /** Drops what is left of call `s` (a call that ended). */
  endCall(s: number): void {
    const box = this.boxes.get(s);
    if (!box) return;
    for (const c of box.values()) this.remove(c);
    this.boxes.delete(s);
  }

  /**
   * Enters `generation`: drops every chunk of the one that ended, and returns those held for
   * this one (to file again); of the rest, keeps those of the generation after (dropping the
   * ones further ahead, counted).
   */
  enter(generation: number): HeldChunk[] {
    this.generation = generation;
    this.boxes.clear();
    const replay = this.next.filter((h) => h.g === generation);
    const ahead = this.next.filter((h) => h.g === generation + 1);
    const dropped = this.next.length - replay.length - ahead.length - this.next.filter((h) => h.g < generation).length;
    if (dropped > 0) this.onOverflow(dropped);
    this.next = ahead;
    this.chunks = 0;
    this.bytes = 0;
    for (const h of ahead) this.add(h);
    return replay;
  }

  private add(c: Chunk): void {
    this.chunks++;
    this.bytes += c.d.length + HELD_CHUNK_OVERHEAD;
  }

  private remove(c: Chunk): void {
    this.chunks--;
    this.bytes -= c.d.length + HELD_CHUNK_OVERHEAD;
  }

  /**
   * Frees room for a chunk of `bytes` for call `s` (`Infinity`: the next generation) by dropping
   * chunks needed later than it; false (counted) when that is not enough.
   */
  private makeRoom(bytes: number, s: number): boolean {
    const cost = bytes + HELD_CHUNK_OVERHEAD;
    if (cost > HOLD_BYTES) {
      this.onOverflow(1);
      return false;
    }
    const full = (): boolean => this.chunks + 1 > HOLD_CHUNKS || this.bytes + cost > HOLD_BYTES;
    // The next generation's chunks go first, newest first (a flood's own), when the chunk is for this one.
    while (full() && s !== Infinity && this.next.length > 0) this.drop(this.next.pop()!);
    while (full()) {
      let latest = -1;
      for (const k of this.boxes.keys()) if (k > latest) latest = k;
      if (latest <= s) break;
      for (const c of this.boxes.get(latest)!.values()) this.drop(c);
      this.boxes.delete(latest);
    }
    if (!full()) return true;
    this.onOverflow(1);
    return false;
  }

  private drop(c: Chunk): void {
    this.remove(c);
    c.done?.();
    this.onOverflow(1);
  }
}
