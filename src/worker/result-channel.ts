import { Socket } from 'node:net';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { RecordBatch } from 'apache-arrow';
import { encodeFrame, END_OF_RESULTS, frameOf, type FrameFormat } from '../transport/frames.js';
import { SparkPartitionServerError } from '../errors.js';
import type { PartitionResult } from './partition-server.js';
import { encode } from '../protocol/codec.js';
import type { FailureReport } from '../protocol/types.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

/**
 * Where results go: an fd the launcher gave the worker process (a pipe or socket), or, for a
 * partition run as a thread, a stream to its host.
 */
export type ResultChannel = number | Writable;

/** Result channels this process opened: once open (and perhaps closed), a failure report may no longer use them. */
const opened = new Set<ResultChannel>();

/** The channel as a writable stream. */
function openChannel(target: ResultChannel): Writable {
  return typeof target === 'number' ? new Socket({ fd: target, readable: false, writable: true }) : target;
}

/** How many result records go into one frame on the result channel. */
const RESULT_BATCH = 1024;

/**
 * True for an Arrow `Table` or `RecordBatch`, also one made by another copy of apache-arrow (the
 * user's server may import its own), told by shape rather than by class.
 */
function arrowBatchesOf(value: unknown): RecordBatch[] | undefined {
  if (typeof value !== 'object' || value === null || !('schema' in value)) return undefined;
  const v = value as { batches?: unknown; numRows?: unknown; data?: unknown };
  if (Array.isArray(v.batches)) return v.batches as RecordBatch[];
  if (typeof v.numRows === 'number' && typeof v.data === 'object') return [value as RecordBatch];
  return undefined;
}

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
export async function writeResults(fd: ResultChannel, format: FrameFormat, records: PartitionResult<unknown>): Promise<void> {
  const channel = typeof fd === 'number' ? `result channel (fd ${fd})` : 'result channel';
  let out: Writable;
  opened.add(fd);
  try {
    out = openChannel(fd);
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

  const send = async (encode: () => Buffer, cannot: string): Promise<void> => {
    if (failed) throw failed;
    let frame: Buffer;
    try {
      frame = encode();
    } catch (err) {
      // SPS_RESULT_WRITE either way; an EncodeError's message names where in which record.
      throw writeError(cannot, err);
    }
    if (!out.write(frame)) await Promise.race([once(out, 'drain'), failure]);
  };

  try {
    const arrow = arrowBatchesOf(records);
    if (arrow) {
      // Loaded only for an Arrow result: other workers never load it.
      const { tableToIPC, Table } = await import('apache-arrow');
      // One Arrow IPC stream per record batch, each in its own frame: a result with a schema.
      for (const batch of arrow) await send(() => frameOf(tableToIPC(new Table([batch]), 'stream')), 'a result record batch cannot be encoded as Arrow');
      await send(() => encodeFrame(END_OF_RESULTS, format), 'the end of the result cannot be encoded');
      out.end();
      await Promise.race([finished, failure]);
      return;
    }
    let batch: unknown[] = [];
    let sent = 0;
    const framed = (batch: unknown[]) => () => encodeFrame(batch, format, sent);
    for await (const record of records as AsyncIterable<unknown>) {
      batch.push(record);
      if (batch.length >= RESULT_BATCH) {
        await send(framed(batch), `a result record cannot be encoded as ${format}`);
        sent += batch.length;
        batch = [];
      }
    }
    if (batch.length > 0) await send(framed(batch), `a result record cannot be encoded as ${format}`);
    // Says the result is whole: a channel that closes without it was cut short.
    await send(() => encodeFrame(END_OF_RESULTS, format), 'the end of the result cannot be encoded');
    out.end();
    await Promise.race([finished, failure]);
  } catch (err) {
    // Close the channel at once: the launcher sees it end, and the worker's exit code says why.
    out.destroy();
    throw err;
  }
}

/**
 * Writes a failed worker's report as the only frame of its result channel, a `failure` message in
 * the channel's format, so its launcher learns why (and whether a retry can fix it) whatever the
 * log level. Does nothing when the results were already being written: that fd may be closed and
 * reused by now. Best effort: a channel that cannot be written leaves the exit code to say it failed.
 */
export async function writeFailure(fd: ResultChannel, format: FrameFormat, report: FailureReport): Promise<void> {
  if (opened.has(fd)) return;
  opened.add(fd);
  const body = format === 'json' ? Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, t: 'failure', error: report })) : encode('failure', { error: report });
  await new Promise<void>((resolve) => {
    let out: Writable;
    try {
      out = openChannel(fd);
    } catch {
      return resolve();
    }
    out.once('error', () => resolve());
    out.end(frameOf(body), () => resolve());
  });
}
