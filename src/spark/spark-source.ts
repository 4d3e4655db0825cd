import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { RANGE_FIELDS, type EmbeddedSource, type RangeSource } from '../driver/launch/data-source.js';
import { fieldsOf, isObject, rejectUnknownFields, type UnionKeys } from '../option-fields.js';

/** Options of Spark's DataFrame readers (e.g. `{ header: 'true' }` for csv). */
export type ReaderOptions = Record<string, string>;

/**
 * What a Spark cluster run serves, read by the Spark application and repartitioned to the run's
 * partitions. Range and rows reach the partition servers as the values themselves; text files as
 * lines; DataFrame sources (parquet, json, csv, sql, table) as plain objects keyed by column.
 */
export type SparkSource =
  | RangeSource
  /** In-memory rows, parallelized (contiguous slices, as `parallelize` does). */
  | { rows: readonly unknown[] }
  /** Lines of text files (a path, directory or glob Spark can read). */
  | { textFile: string }
  | { parquet: string; options?: ReaderOptions }
  | { json: string; options?: ReaderOptions }
  | { csv: string; options?: ReaderOptions }
  /** The result of a Spark SQL query. */
  | { sql: string }
  /** A table or view of the Spark session. */
  | { table: string }
  /**
   * A DataFrame or RDD that the process hosting the runner holds under this id: the Python
   * package's Cluster serves the user's own data this way (see `SparkApplication.attach`).
   */
  | { session: string };

/** The source as the runner reads it (`kind` plus fields). */
export type RunnerSource = { kind: string; [field: string]: unknown };

const PATH_KINDS = ['textFile', 'parquet', 'json', 'csv'] as const;
/** Every field of every kind of source. */
const SOURCE_FIELDS = fieldsOf<Record<UnionKeys<SparkSource>, unknown>>({
  range: true,
  session: true,
  rows: true,
  textFile: true,
  parquet: true,
  json: true,
  csv: true,
  options: true,
  sql: true,
  table: true,
});

function isRange(v: object): v is RangeSource {
  return 'range' in v && !(Symbol.iterator in v);
}

/** Checks a `source` option's shape; errors name the field that was wrong. */
export function validateSparkSource(source: unknown, option = 'source'): void {
  if (!isObject(source)) throw new InvalidOptionError(option, 'must be an object');
  rejectUnknownFields(source, SOURCE_FIELDS, option);
  if (isRange(source)) {
    if (isObject(source.range)) rejectUnknownFields(source.range, RANGE_FIELDS, `${option}.range`);
    const { start = 0, end, step = 1 } = source.range ?? ({} as RangeSource['range']);
    for (const [k, v] of Object.entries({ start, end, step })) {
      if (!Number.isSafeInteger(v)) throw new InvalidOptionError(`${option}.range.${k}`, `must be a safe integer, got ${String(v)}`);
    }
    if (step === 0) throw new InvalidOptionError(`${option}.range.step`, 'must not be 0');
    return;
  }
  const kinds = ['rows', ...PATH_KINDS, 'sql', 'table', 'session'].filter((k) => k in source);
  if (kinds.length !== 1) {
    throw new InvalidOptionError(
      option,
      `must have exactly one of range, rows, textFile, parquet, json, csv, sql, table, session (got ${kinds.join(', ') || 'none'})`,
    );
  }
  const kind = kinds[0]!;
  const value = (source as Record<string, unknown>)[kind];
  if (kind === 'rows') {
    if (!Array.isArray(value)) throw new InvalidOptionError(`${option}.rows`, 'must be an array');
  } else if (typeof value !== 'string' || value === '') {
    throw new InvalidOptionError(`${option}.${kind}`, 'must be a non-empty string');
  }
  const readerOptions = (source as { options?: unknown }).options;
  if (
    readerOptions !== undefined &&
    (typeof readerOptions !== 'object' || readerOptions === null || Object.values(readerOptions).some((v) => typeof v !== 'string'))
  ) {
    throw new InvalidOptionError(`${option}.options`, 'must map reader option names to string values');
  }
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
