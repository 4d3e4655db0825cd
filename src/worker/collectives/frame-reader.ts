import type { BufferPool } from './buffer-pool.js';

/** Largest header of a frame on a direct socket (a `coll` message without its bytes). */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Largest data of a frame on a direct socket (a chunk is at most the NATS chunk size or 8 MB). */
export const MAX_DATA_BYTES = 8 * 1024 * 1024;

/** One frame read off a direct socket. */
export interface DirectFrame {
  header: Uint8Array;
  data: Uint8Array;
}

/**
 * Reads a byte stream as frames `[u32 header length][u32 data length][header][data]`, little-endian.
 * A frame's data ends up copied once into a buffer of its own starting at offset 0, so a typed
 * array can view it without another copy (no realignment): a free one from the pool, filled as the
 * bytes arrive, or else (nothing pooled of that size) the reads that brought it are kept until its
 * last byte is in, then copied into a new one. So memory follows the bytes that arrived, never the
 * length a prefix announces: a frame announcing 8 MB that sends nothing more costs nothing.
 */
export class FrameReader {
  private readonly prefix = Buffer.alloc(8);
  /** What is being read: the prefix, the header, or the data; and how many of its bytes are in. */
  private stage: 'prefix' | 'header' | 'data' = 'prefix';
  private filled = 0;
  private header: Buffer = this.prefix;
  private dataBytes = 0;
  /** The data of the frame being read: the pooled buffer it is copied into, or else the reads that brought it. */
  private into: Buffer | undefined;
  private parts: Buffer[] = [];

  constructor(private readonly pool: BufferPool) {}

  /**
   * Bytes allocated for the frame being read: its header (once its length is known, at most
   * 64 KiB) and what arrived of its data (a pooled buffer it fills was allocated before).
   */
  get held(): number {
    return this.stage === 'prefix' ? 0 : this.stage === 'header' ? this.header.length : this.header.length + this.filled;
  }

  /** Adds input; returns whole frames, or `undefined` when the stream broke the framing (too large a part, an empty header). */
  push(chunk: Buffer): DirectFrame[] | undefined {
    const out: DirectFrame[] = [];
    let at = 0;
    for (;;) {
      if (this.stage === 'data') {
        const n = Math.min(this.dataBytes - this.filled, chunk.length - at);
        if (n > 0 && this.into) chunk.copy(this.into, this.filled, at, at + n);
        else if (n > 0) this.parts.push(chunk.subarray(at, at + n));
        at += n;
        this.filled += n;
        if (this.filled < this.dataBytes) return out;
        out.push({ header: this.header, data: this.joinData() });
        this.stage = 'prefix';
        this.filled = 0;
        continue;
      }
      if (at >= chunk.length) return out;
      const into = this.stage === 'prefix' ? this.prefix : this.header;
      const n = Math.min(into.length - this.filled, chunk.length - at);
      chunk.copy(into, this.filled, at, at + n);
      at += n;
      this.filled += n;
      if (this.filled < into.length) continue;
      this.filled = 0;
      if (this.stage === 'header') {
        this.stage = 'data';
        continue;
      }
      const h = this.prefix.readUInt32LE(0);
      const d = this.prefix.readUInt32LE(4);
      if (h === 0 || h > MAX_HEADER_BYTES || d > MAX_DATA_BYTES) return undefined;
      this.header = Buffer.allocUnsafe(h);
      this.dataBytes = d;
      this.into = this.pool.reuse(d);
      this.stage = 'header';
    }
  }

  private joinData(): Buffer {
    const ready = this.into;
    this.into = undefined;
    if (ready) return ready;
    const data = this.pool.take(this.dataBytes);
    let at = 0;
    for (const p of this.parts) {
      p.copy(data, at);
      at += p.length;
    }
    this.parts = [];
    return data;
  }
}
