import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { Type, type Static } from '@sinclair/typebox';
import { RangeSchema, type EmbeddedSource, type RangeSource } from '../driver/launch/data-source.js';
import { checkOptions, NonEmpty, STRICT, StringMap } from '../option-schema.js';

const ReaderOptionsSchema = Type.Optional(StringMap('must map reader option names to string values'));
/** Options of Spark's DataFrame readers (e.g. `{ header: 'true' }` for csv). */
export type ReaderOptions = Static<typeof ReaderOptionsSchema>;
/** A path, directory or glob Spark can read. */
const SparkPath = (): ReturnType<typeof NonEmpty> => NonEmpty();

/**
 * What a Spark cluster run serves, read by the Spark application and repartitioned to the run's
 * partitions. Range and rows reach the partition servers as the values themselves; text files as
 * lines; DataFrame sources (parquet, json, csv, sql, table) as plain objects keyed by column.
 */
export const SparkSourceSchema = Type.Union(
  [
    RangeSchema,
    /** In-memory rows, parallelized (contiguous slices, as `parallelize` does). */
    Type.Object({ rows: Type.Array(Type.Unknown(), { problem: 'must be an array' }) }, STRICT),
    /** Lines of text files (a path, directory or glob Spark can read). */
    Type.Object({ textFile: SparkPath() }, STRICT),
    Type.Object({ parquet: SparkPath(), options: ReaderOptionsSchema }, STRICT),
    Type.Object({ json: SparkPath(), options: ReaderOptionsSchema }, STRICT),
    Type.Object({ csv: SparkPath(), options: ReaderOptionsSchema }, STRICT),
    /** The result of a Spark SQL query. */
    Type.Object({ sql: NonEmpty() }, STRICT),
    /** A table or view of the Spark session. */
    Type.Object({ table: NonEmpty() }, STRICT),
    /**
     * A DataFrame or RDD that the process hosting the runner holds under this id: the Python
     * package's Cluster serves the user's own data this way (see `SparkApplication.attach`).
     */
    Type.Object({ session: NonEmpty() }, STRICT),
  ],
  { problem: 'must be an object with exactly one of range, rows, textFile, parquet, json, csv, sql, table, session' },
);

/** What a Spark cluster run serves (checked against its schema, `SparkSourceSchema`). */
export type SparkSource = Static<typeof SparkSourceSchema>;

/** The source as the runner reads it (`kind` plus fields). */
export type RunnerSource = { kind: string; [field: string]: unknown };

const PATH_KINDS = ['textFile', 'parquet', 'json', 'csv'] as const;

function isRange(v: object): v is RangeSource {
  return 'range' in v && !(Symbol.iterator in v);
}

/** Checks a `source` option's shape; errors name the field that was wrong. */
export function validateSparkSource(source: unknown, option = 'source'): asserts source is SparkSource {
  checkOptions(SparkSourceSchema, source, option);
}

/**
 * Turns the run's `source` (or embedded `data`) into what the runner reads. In-memory rows are
 * written as JSON to a file in `dir`, since they may not fit a NATS message.
 */
export async function runnerSource(source: SparkSource | EmbeddedSource | undefined, dir: string): Promise<RunnerSource> {
  if (source === undefined) return { kind: 'empty' };
  if (typeof source === 'object' && source !== null && !Array.isArray(source)) {
    if (isRange(source)) return { kind: 'range', start: source.range.start ?? 0, end: source.range.end, step: source.range.step ?? 1 };
    const s = source as Record<string, unknown>;
    for (const kind of PATH_KINDS) if (typeof s[kind] === 'string') return { kind, path: s[kind], options: s.options ?? {} };
    if (typeof s.sql === 'string') return { kind: 'sql', query: s.sql };
    if (typeof s.table === 'string') return { kind: 'table', table: s.table };
    if (typeof s.session === 'string') return { kind: 'session', id: s.session };
  }
  let rows: unknown[];
  if (Array.isArray(source)) rows = source;
  else if ('rows' in (source as object) && Array.isArray((source as { rows: unknown }).rows)) rows = (source as { rows: unknown[] }).rows;
  else if (typeof (source as Iterable<unknown>)[Symbol.iterator] === 'function') rows = Array.from(source as Iterable<unknown>);
  else if (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    rows = [];
    for await (const row of source as AsyncIterable<unknown>) rows.push(row);
  } else {
    throw new InvalidOptionError('source', 'must be a range, rows, or a Spark reader source');
  }
  const file = join(dir, 'rows.json');
  await writeFile(file, JSON.stringify(rows));
  return { kind: 'rows', file };
}
