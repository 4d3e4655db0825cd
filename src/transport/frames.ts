import type { Readable, Writable } from 'node:stream';
import { pack, unpack } from '../protocol/codec.js';

/**
 * Length-prefixed frames: a 4-byte big-endian length, then that many bytes. Used on a worker's
 * stdin (row batches) and on its result channel (result batches), where logs can never interleave.
 * Each frame holds one batch (an array) so that per-row overhead stays small.
 */

/** How a batch frame is encoded: msgpack from Node launchers, JSON from the Python Spark runner. */
export type FrameFormat = 'msgpack' | 'json';

/** Largest frame accepted; a bigger length means the stream is not a frame stream. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Encodes one batch as a frame. */
export function encodeFrame(batch: readonly unknown[], format: FrameFormat): Buffer {
  const body = format === 'json' ? Buffer.from(JSON.stringify(batch)) : Buffer.from(pack(batch));
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/**
 * Writes one batch as a frame, honouring backpressure. Resolves once the stream can take more, or
 * when it closed (the reader went away; whoever owns the reader reports why).
 */
export async function writeFrame(out: Writable, batch: readonly unknown[], format: FrameFormat): Promise<void> {
  if (out.write(encodeFrame(batch, format))) return;
  await new Promise<void>((resolve) => {
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

/** Yields the raw bodies of the frames of a stream; throws if the stream ends inside a frame. */
export async function* readFrames(input: Readable, what: string): AsyncGenerator<Buffer> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of input as AsyncIterable<Buffer>) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > MAX_FRAME_BYTES) throw new Error(`${what}: frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}; not a frame stream`);
      if (buf.length - off - 4 < len) break;
      yield buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
    }
    buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
  }
  if (buf.length > 0) throw new Error(`${what}: stream ended inside a frame (${buf.length} trailing bytes)`);
}

/** Decodes one batch frame body. */
export function decodeBatch(body: Buffer, format: FrameFormat, what: string): unknown[] {
  const value = format === 'json' ? JSON.parse(body.toString('utf8')) : unpack(body);
  if (!Array.isArray(value)) throw new Error(`${what}: frame is not a batch (array)`);
  return value;
}
