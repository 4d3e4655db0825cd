import type { Readable, Writable } from 'node:stream';
import { decode, pack, unpack } from '../protocol/codec.js';
import type { FailureReport } from '../protocol/types.js';
import { FRAMING } from '../protocol/framing.js';
import { toWireValue } from '../protocol/wire-values.js';

/**
 * Length-prefixed frames: a 4-byte big-endian length, then that many bytes. Used on a worker's
 * stdin (row batches) and on its result channel (result batches), where logs can never interleave.
 * Each frame holds one batch (an array) so that per-row overhead stays small.
 */

/** How a batch frame is encoded: msgpack from Node launchers, JSON from the Python Spark runner. */
export type FrameFormat = 'msgpack' | 'json';

/** Largest frame accepted; a bigger length means the stream is not a frame stream. */
export const MAX_FRAME_BYTES = FRAMING.maxFrameBytes;

/**
 * Encodes one batch as a frame, each record mapped by the one mapping of values (wire-values.ts).
 * @param first The index of the batch's first record in the stream, for an error's path (`record[12].fn`).
 * @throws EncodeError naming the record and the path inside it that cannot travel.
 */
export function encodeFrame(batch: readonly unknown[], format: FrameFormat, first = 0): Buffer {
  const values = batch.map((r, i) => toWireValue(r, `record[${first + i}]`, format));
  return frameOf(format === 'json' ? Buffer.from(JSON.stringify(values)) : pack(values));
}

/** A frame holding `body` as it is. */
export function frameOf(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAMING.lengthPrefixBytes + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAMING.lengthPrefixBytes);
  return frame;
}

const ARROW_RESULT_PREFIX = Buffer.from(FRAMING.arrowResultPrefix, 'hex');

/** True when a result frame's body is an Arrow IPC stream (a result with a schema), not a batch of records. */
export function isArrowFrame(body: Buffer): boolean {
  return body.length >= ARROW_RESULT_PREFIX.length && ARROW_RESULT_PREFIX.equals(body.subarray(0, ARROW_RESULT_PREFIX.length));
}

/**
 * Writes one batch as a frame, honouring backpressure. Resolves once the stream can take more, or
 * when it closed (the reader went away; whoever owns the reader reports why).
 */
export async function writeFrame(out: Writable, batch: readonly unknown[], format: FrameFormat): Promise<void> {
  if (!out.write(encodeFrame(batch, format))) await waitDrained(out);
}

/** Resolves once `out` can take more, or when it closed (the reader went away). */
export function waitDrained(out: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

/**
 * Bytes received but not yet taken, kept as the chunks they arrived in. Taking only copies when a
 * piece spans chunks, so reading a stream costs time linear in its size, however it is chunked.
 */
class ChunkQueue {
  private readonly chunks: Buffer[] = [];
  /** Offset of the first untaken byte in `chunks[0]`. */
  private head = 0;
  /** Untaken bytes in all chunks. */
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Removes and returns the next `n` bytes (`n <= length`); a view when they lie in one chunk. */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0 || !first) return Buffer.alloc(0);
    this.length -= n;
    if (first.length - this.head >= n) {
      const piece = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) this.dropFirst();
      return piece;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(n - filled, chunk.length - this.head);
      chunk.copy(out, filled, this.head, this.head + count);
      filled += count;
      this.head += count;
      if (this.head === chunk.length) this.dropFirst();
    }
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.head = 0;
  }
}

/** Yields the raw bodies of the frames of a stream; throws if the stream ends inside a frame. */
export async function* readFrames(input: Readable, what: string): AsyncGenerator<Buffer> {
  const queue = new ChunkQueue();
  // Length of the frame whose body is awaited, once its prefix was read; -1 while awaiting a prefix.
  let len = -1;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    queue.push(chunk);
    for (;;) {
      if (len < 0) {
        if (queue.length < 4) break;
        len = queue.take(4).readUInt32BE(0);
        if (len > MAX_FRAME_BYTES) throw new Error(`${what}: frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}; not a frame stream`);
      }
      if (queue.length < len) break;
      const body = queue.take(len);
      len = -1;
      yield body;
    }
  }
  const trailing = queue.length + (len < 0 ? 0 : 4);
  if (trailing > 0) throw new Error(`${what}: stream ended inside a frame (${trailing} trailing bytes)`);
}

/**
 * The result channel ends with an empty batch: the worker finished and wrote all it had. Records
 * never travel in an empty batch, so a channel that closes without it was cut short (a worker that
 * exited by itself, before the driver told it to stop) and its records are not a result.
 */
export const END_OF_RESULTS: readonly unknown[] = Object.freeze([]);

/**
 * Reads a result channel to its end: every record, in order, once the end-of-results batch came,
 * or the `failure` report a failed worker wrote instead. Frames holding an Arrow IPC stream (a
 * result with a schema) become rows through `arrowRows`.
 * @throws Error naming `what` when the stream is corrupt, holds anything after the end, or closes without it.
 */
export async function readResultChannel(
  input: Readable,
  format: FrameFormat,
  what: string,
  arrowRows: (body: Buffer) => Iterable<unknown> | Promise<Iterable<unknown>>,
): Promise<{ records: unknown[]; failure?: FailureReport }> {
  const records: unknown[] = [];
  let complete = false;
  let failure: FailureReport | undefined;
  for await (const body of readFrames(input, what)) {
    if (complete || failure) throw new Error(`${what}: data after the end of the result`);
    if (isArrowFrame(body)) {
      for (const row of await arrowRows(body)) records.push(row);
      continue;
    }
    // A failed worker's report is an envelope (a map); result batches are arrays.
    if (format === 'msgpack' && records.length === 0 && isMsgpackMap(body)) {
      failure = decode(what, body, ['failure']).error;
      continue;
    }
    const batch = decodeBatch(body, format, what);
    if (batch.length === 0) complete = true;
    else for (const r of batch) records.push(r);
  }
  if (failure) return { records: [], failure };
  if (!complete) throw new Error(`${what}: closed before the end of the result (the worker exited without being told to stop, or was cut short)`);
  return { records };
}

/** True when a msgpack body starts with a map (fixmap, map16, map32). */
function isMsgpackMap(body: Buffer): boolean {
  const b = body[0] ?? 0;
  return (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf;
}

/** Decodes one batch frame body. */
export function decodeBatch(body: Buffer, format: FrameFormat, what: string): unknown[] {
  const value = format === 'json' ? JSON.parse(body.toString('utf8')) : unpack(body);
  if (!Array.isArray(value)) throw new Error(`${what}: frame is not a batch (array)`);
  return value;
}
