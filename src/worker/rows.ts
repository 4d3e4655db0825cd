import type { Readable } from 'node:stream';
import type { RecordBatch } from 'apache-arrow';
import { decodeBatch, readFrames } from '../transport/frames.js';
import { FRAMING, type RowFormat } from '../protocol/framing.js';
import { SparkPartitionServerError } from '../errors.js';
import type { LongMode, RowObjects } from './arrow-rows.js';

/**
 * A partition's rows, read once from the launcher. Iterate it row by row with `for await`, or
 * batch by batch with {@link Rows.batches} — the fast path for large partitions, since it costs one
 * await per batch instead of one per row. When the rows arrive as Arrow (Spark DataFrame sources,
 * embedded Parquet and Arrow files), {@link Rows.arrow} yields the record batches themselves.
 */
export interface Rows<Row> extends AsyncIterable<Row> {
  /** How the rows arrive: `arrow` (record batches), or `json` / `msgpack` (batches of values). */
  readonly format: RowFormat;
  /** The rows in the batches they arrived in (arrays of up to a few thousand rows). */
  batches(): AsyncIterable<Row[]>;
  /**
   * The Arrow record batches as they arrived, columns as typed arrays over the received bytes (no
   * copy, no per-row work). Only when {@link format} is `arrow`; otherwise throws
   * `SPS_ROWS_NOT_ARROW`.
   */
  arrow(): AsyncIterable<RecordBatch>;
}

/** What a malformed Arrow stream fails the partition with. */
function malformed(what: string, err: unknown): SparkPartitionServerError {
  const why = err instanceof Error ? err.message : String(err);
  return new SparkPartitionServerError('SPS_ROWS_MALFORMED', `${what}: malformed Arrow stream: ${why}`, { cause: err });
}

const END_OF_STREAM = Buffer.from(FRAMING.arrowEndOfStream, 'hex');

/**
 * Passes the bytes of `input` on and, at its end, checks that they ended with Arrow's
 * end-of-stream marker: Arrow's reader takes a stream cut at a message boundary as complete, so a
 * feeder that died between two batches would otherwise go unnoticed.
 */
async function* endChecked(input: Readable, what: string): AsyncGenerator<Uint8Array> {
  let tail: Buffer = Buffer.alloc(0);
  for await (const piece of input as AsyncIterable<Uint8Array>) {
    const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    tail =
      chunk.length >= END_OF_STREAM.length ? chunk.subarray(chunk.length - END_OF_STREAM.length) : Buffer.concat([tail, chunk]).subarray(-END_OF_STREAM.length);
    yield chunk;
  }
  if (tail.length > 0 && !tail.equals(END_OF_STREAM)) throw malformed(what, new Error('the stream ended without its end-of-stream marker (cut short?)'));
}

/**
 * The record batches of one or more Arrow IPC streams back to back. Arrow reads one message at a
 * time, so memory holds about one batch however long the stream is.
 */
async function* arrowBatches(input: Readable, what: string): AsyncGenerator<RecordBatch> {
  // Loaded here, on the first Arrow batch: a worker whose rows are not Arrow never loads it.
  const { RecordBatchReader } = await import('apache-arrow');
  try {
    for await (const reader of RecordBatchReader.readAll(endChecked(input, what))) {
      for await (const batch of reader) yield batch;
    }
  } catch (err) {
    if (err instanceof SparkPartitionServerError) throw err;
    throw malformed(what, err);
  }
}

/** Reads the rows on `input` (frames, or an Arrow stream) and offers them as {@link Rows}. */
export class RowStream<Row> implements Rows<Row> {
  private readonly frames?: AsyncGenerator<Row[]>;
  private readonly records?: AsyncGenerator<RecordBatch>;
  private toObjects?: RowObjects;
  private claimed = false;
  private done = false;

  constructor(
    input: Readable,
    readonly format: RowFormat,
    private readonly what: string,
    private readonly longs: LongMode = 'number',
  ) {
    if (format === 'arrow') {
      this.records = arrowBatches(input, what);
    } else {
      this.frames = (async function* () {
        for await (const body of readFrames(input, what)) yield decodeBatch(body, format, what) as Row[];
      })();
    }
  }

  private claim(): void {
    if (this.claimed) throw new SparkPartitionServerError('SPS_ROWS_READ_TWICE', `${this.what}: the rows can only be read once`);
    this.claimed = true;
  }

  private async nextRecordBatch(): Promise<RecordBatch | undefined> {
    if (this.done) return undefined;
    const r = await this.records!.next();
    if (r.done) this.done = true;
    return r.done ? undefined : r.value;
  }

  private async nextBatch(): Promise<Row[] | undefined> {
    if (this.records) {
      const batch = await this.nextRecordBatch();
      if (!batch) return undefined;
      this.toObjects ??= new (await import('./arrow-rows.js')).RowObjects(this.longs);
      try {
        return this.toObjects.objects(batch) as Row[];
      } catch (err) {
        // Buffers that do not match their schema surface only when the values are read.
        if (err instanceof SparkPartitionServerError) throw err;
        throw malformed(this.what, err);
      }
    }
    if (this.done) return undefined;
    const r = await this.frames!.next();
    if (r.done) this.done = true;
    return r.done ? undefined : r.value;
  }

  private iterable<T>(next: () => Promise<T | undefined>): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const value = await next();
          return value === undefined ? { done: true, value: undefined } : { done: false, value };
        },
        // Breaking out early leaves the rest unread; the host drains it (see drainRest).
        return: async () => ({ done: true, value: undefined }),
      }),
    };
  }

  batches(): AsyncIterable<Row[]> {
    this.claim();
    return this.iterable(() => this.nextBatch());
  }

  arrow(): AsyncIterable<RecordBatch> {
    if (!this.records) {
      throw new SparkPartitionServerError(
        'SPS_ROWS_NOT_ARROW',
        `${this.what}: the rows arrive as ${this.format} batches, not Arrow; rows.arrow() needs a Spark DataFrame source or an embedded Parquet/Arrow file (see rows.format)`,
      );
    }
    this.claim();
    return this.iterable(() => this.nextRecordBatch());
  }

  [Symbol.asyncIterator](): AsyncIterator<Row> {
    this.claim();
    let batch: Row[] = [];
    let i = 0;
    return {
      next: async () => {
        while (i >= batch.length) {
          const next = await this.nextBatch();
          if (next === undefined) return { done: true, value: undefined };
          batch = next;
          i = 0;
        }
        return { done: false, value: batch[i++]! };
      },
      return: async () => ({ done: true, value: undefined }),
    };
  }

  /** Reads and drops whatever the server did not read, so the feeding side never blocks. */
  async drainRest(): Promise<void> {
    if (this.records) while ((await this.nextRecordBatch()) !== undefined);
    else while ((await this.nextBatch()) !== undefined);
  }
}
