import { InvalidOptionError } from '../../errors.js';
import { Type, type Static } from '@sinclair/typebox';
import { checkOptions, SafeInteger, STRICT } from '../../option-schema.js';
import { partitionFiles, type ArrowPartitions, type FileSource } from './file-source.js';
import { placeByKey, type PartitionBy } from './key-placement.js';

/** `{ range: { start?, end, step? } }`, of `data` or of a Spark `source`. */
export const RangeSchema = Type.Object(
  {
    range: Type.Object(
      {
        /** The first number. Default: 0. */
        start: Type.Optional(SafeInteger()),
        /** The bound, not included. */
        end: SafeInteger(),
        /** The step, negative to count down. Default: 1. */
        step: Type.Optional(SafeInteger(true)),
      },
      { ...STRICT, problem: 'must be { start?, end, step? }' },
    ),
  },
  STRICT,
);

/** Numbers `start, start + step, …` below `end` (like Spark's `range`). */
export type RangeSource = Static<typeof RangeSchema>;

/**
 * Rows of an embedded cluster: an array, any (async) iterable — read once, up front — a range, or
 * Parquet / Arrow IPC files (`{ parquet: path }`, `{ arrow: path }`; a file or a directory of them),
 * which reach the partition servers as Arrow. Rows are split into contiguous slices, one per
 * partition, as Spark's `parallelize` does; files by row group (Parquet) or record batch (Arrow).
 */
export type EmbeddedSource<Row = unknown> = readonly Row[] | Iterable<Row> | AsyncIterable<Row> | RangeSource | FileSource;

/** A source of values split into partitions; `slice(p)` can be read any number of times (for retries). */
export interface ValuePartitions {
  readonly partitions: number;
  readonly rowFormat: 'msgpack';
  slice(partition: number): Iterable<unknown>;
}

/** A source split into partitions: values (sent as msgpack frames) or Arrow streams. */
export type PartitionedSource = ValuePartitions | ArrowPartitions;

function isFileSource(v: unknown): v is FileSource {
  if (typeof v !== 'object' || v === null || Symbol.iterator in v || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  if (keys.length !== 1 || (keys[0] !== 'parquet' && keys[0] !== 'arrow')) return false;
  const path = (v as Record<string, unknown>)[keys[0]];
  if (typeof path !== 'string' || path === '') throw new InvalidOptionError(`data.${keys[0]}`, 'must be a non-empty path');
  return true;
}

function isRange(v: unknown): v is RangeSource {
  return typeof v === 'object' && v !== null && 'range' in v && !(Symbol.iterator in v);
}

function* rangeSlice(start: number, step: number, from: number, to: number): Iterable<number> {
  for (let i = from; i < to; i++) yield start + i * step;
}

/**
 * Splits a source into `partitions` slices; errors name the option that was wrong. With
 * `partitionBy`, each row goes to the partition owning its key instead (docs/keys.md).
 */
export async function partitionSource(data: EmbeddedSource | undefined, partitions: number, partitionBy?: PartitionBy): Promise<PartitionedSource> {
  const bounds = (n: number, p: number): [number, number] => [Math.floor((p * n) / partitions), Math.floor(((p + 1) * n) / partitions)];
  if (data === undefined) return { partitions, rowFormat: 'msgpack', slice: () => [] };
  if (isFileSource(data)) {
    if (partitionBy !== undefined)
      throw new InvalidOptionError('partitionBy', 'cannot place the rows of Parquet or Arrow files (data); give the rows, or a Spark source');
    return partitionFiles(data, partitions);
  }
  if (partitionBy !== undefined) {
    // Every row, as one partition has them, then placed by key (read once: a retry gets the same slice).
    const all = (await partitionSource(data, 1)) as ValuePartitions;
    const placed = placeByKey(all.slice(0), partitions, partitionBy);
    return { partitions, rowFormat: 'msgpack', slice: (p) => placed[p]! };
  }
  if (isRange(data)) {
    checkOptions(RangeSchema, data, 'data');
    const { start = 0, end, step = 1 } = data.range;
    const n = Math.max(0, Math.ceil((end - start) / step));
    return {
      partitions,
      rowFormat: 'msgpack',
      slice: (p) => {
        const [from, to] = bounds(n, p);
        return rangeSlice(start, step, from, to);
      },
    };
  }
  let rows: readonly unknown[];
  if (Array.isArray(data)) rows = data;
  else if (typeof (data as Iterable<unknown>)[Symbol.iterator] === 'function') rows = Array.from(data as Iterable<unknown>);
  else if (typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const collected: unknown[] = [];
    for await (const row of data as AsyncIterable<unknown>) collected.push(row);
    rows = collected;
  } else {
    throw new InvalidOptionError(
      'data',
      'must be an array, an iterable, an async iterable, { range: { start, end, step } }, { parquet: path } or { arrow: path }',
    );
  }
  return {
    partitions,
    rowFormat: 'msgpack',
    slice: (p) => {
      const [from, to] = bounds(rows.length, p);
      return rows.slice(from, to);
    },
  };
}
