import { Socket } from 'node:net';
import { encodeFrame, type FrameFormat } from '../transport/frames.js';

/** How many result records go into one frame on the result channel. */
const RESULT_BATCH = 1024;

/**
 * Writes the result records as frames on the result channel (a pipe or socket the launcher gave
 * the worker as `fd`) and closes it; the launcher reads until end of stream.
 */
export async function writeResults(fd: number, format: FrameFormat, records: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
  const out = new Socket({ fd, readable: false, writable: true });
  const done = new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
  let batch: unknown[] = [];
  for await (const record of records as AsyncIterable<unknown>) {
    batch.push(record);
    if (batch.length >= RESULT_BATCH) {
      if (!out.write(encodeFrame(batch, format))) await new Promise((r) => out.once('drain', r));
      batch = [];
    }
  }
  if (batch.length > 0) out.write(encodeFrame(batch, format));
  out.end();
  await done;
}
