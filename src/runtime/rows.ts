import type { Readable } from 'node:stream';
import { decodeBatch, readFrames, type FrameFormat } from '../transport/frames.js';
import { SparkPartitionServerError } from '../errors.js';

/**
 * A partition's rows, read once from the launcher. Iterate it row by row with `for await`, or
 * batch by batch with {@link Rows.batches} — the fast path for large partitions, since it costs one
 * await per batch instead of one per row.
 */
export interface Rows<Row> extends AsyncIterable<Row> {
  /** The rows in the batches they arrived in (arrays of up to a few thousand rows). */
  batches(): AsyncIterable<Row[]>;
}

/** Reads the batch frames of `input` and offers them as {@link Rows}. */
export class RowStream<Row> implements Rows<Row> {
  private readonly frames: AsyncGenerator<Row[]>;
  private claimed = false;
  private done = false;

  constructor(
    input: Readable,
    format: FrameFormat,
    private readonly what: string,
  ) {
    this.frames = (async function* () {
      for await (const body of readFrames(input, what)) yield decodeBatch(body, format, what) as Row[];
    })();
  }

  private claim(): void {
    if (this.claimed) throw new SparkPartitionServerError('SPS_ROWS_READ_TWICE', `${this.what}: the rows can only be read once`);
    this.claimed = true;
  }

  private async nextBatch(): Promise<Row[] | undefined> {
    if (this.done) return undefined;
    const r = await this.frames.next();
    if (r.done) this.done = true;
    return r.done ? undefined : r.value;
  }

  batches(): AsyncIterable<Row[]> {
    this.claim();
    return {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const value = await this.nextBatch();
          return value === undefined ? { done: true, value: undefined } : { done: false, value };
        },
        return: async () => ({ done: true, value: undefined }),
      }),
    };
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
      // Breaking out early leaves the rest unread; the host drains it (see drainRest).
      return: async () => ({ done: true, value: undefined }),
    };
  }

  /** Reads and drops whatever the server did not read, so the feeding side never blocks. */
  async drainRest(): Promise<void> {
    while ((await this.nextBatch()) !== undefined);
  }
}
