/**
 * Buffers for the data of direct frames, used again once a collective has copied or reduced what
 * they held. Each call of a large `allReduce` receives megabytes; fresh buffers for them count as
 * external memory, and V8 answers that with a garbage collection every call or two (measured:
 * a fifth of a partition's CPU time). A buffer comes back only through {@link BufferPool.give},
 * which the collectives call for chunks they are done with, never for one handed to the caller.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private pooled = 0;

  /** @param maxBytes most bytes kept for reuse (more are left to the garbage collector) */
  constructor(private readonly maxBytes: number) {}

  /** A buffer of exactly `size` bytes at offset 0 (aligned for any element size); its contents are undefined. */
  take(size: number): Buffer {
    return this.reuse(size) ?? Buffer.allocUnsafeSlow(size);
  }

  /** A pooled buffer of exactly `size` bytes, if one is free (nothing new is allocated); its contents are undefined. */
  reuse(size: number): Buffer | undefined {
    const ab = this.free.get(size)?.pop();
    if (!ab) return undefined;
    this.pooled -= size;
    return Buffer.from(ab, 0, size);
  }

  /** Returns a buffer from {@link take} for reuse; its holder must not read it again. */
  give(buf: Uint8Array): void {
    const size = buf.byteLength;
    if (size === 0 || buf.byteOffset !== 0 || buf.buffer.byteLength !== size || this.pooled + size > this.maxBytes) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf.buffer as ArrayBuffer);
    this.pooled += size;
  }

  /** Drops every pooled buffer. */
  clear(): void {
    this.free.clear();
    this.pooled = 0;
  }
}
