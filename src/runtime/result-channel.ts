import { Socket } from 'node:net';
import { once } from 'node:events';
import { encodeFrame, END_OF_RESULTS, type FrameFormat } from '../transport/frames.js';
import { SparkPartitionServerError } from '../errors.js';

/** How many result records go into one frame on the result channel. */
const RESULT_BATCH = 1024;

function writeError(what: string, err: unknown): SparkPartitionServerError {
  const why = err instanceof Error ? err.message : String(err);
  return new SparkPartitionServerError('SPS_RESULT_WRITE', `${what}: ${why}`, { cause: err });
}

/**
 * Writes the result records as frames on the result channel (a pipe or socket the launcher gave
 * the worker as `fd`), then the end-of-results batch, and closes it.
 * @throws SparkPartitionServerError `SPS_RESULT_WRITE` when a record cannot be encoded (a BigInt
 *   beyond 64 bits, a circular object) or the channel cannot be written (closed, not a pipe). An
 *   error thrown by the records' own iterator is passed on as it is: it is the server's.
 */
export async function writeResults(fd: number, format: FrameFormat, records: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
  const channel = `result channel (fd ${fd})`;
  let out: Socket;
  try {
    out = new Socket({ fd, readable: false, writable: true });
  } catch (err) {
    throw writeError(`cannot open the ${channel}`, err);
  }
  // Kept for the whole write: a socket error can come while records are still being built, when
  // nobody awaits the socket; without a listener it would be an uncaught exception.
  let failed: SparkPartitionServerError | undefined;
  const failure = new Promise<never>((_, reject) => {
    out.on('error', (err) => {
      failed ??= writeError(`cannot write the ${channel}`, err);
      reject(failed);
    });
  });
  failure.catch(() => {}); // observed through `failed` and the races below
  const finished = new Promise<void>((resolve) => out.once('finish', resolve));

  const send = async (batch: readonly unknown[]): Promise<void> => {
    if (failed) throw failed;
    let frame: Buffer;
    try {
      frame = encodeFrame(batch, format);
    } catch (err) {
      throw writeError(`a result record cannot be encoded as ${format}`, err);
    }
    if (!out.write(frame)) await Promise.race([once(out, 'drain'), failure]);
  };

  try {
    let batch: unknown[] = [];
    for await (const record of records as AsyncIterable<unknown>) {
      batch.push(record);
      if (batch.length >= RESULT_BATCH) {
        await send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await send(batch);
    // Says the result is whole: a channel that closes without it was cut short.
    await send(END_OF_RESULTS);
    out.end();
    await Promise.race([finished, failure]);
  } catch (err) {
    // Close the channel at once: the launcher sees it end, and the worker's exit code says why.
    out.destroy();
    throw err;
  }
}
