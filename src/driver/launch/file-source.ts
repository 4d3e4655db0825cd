import { openAsBlob } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordBatch } from 'apache-arrow';
import type { ParquetFile } from 'parquet-wasm';
import { InvalidOptionError } from '../../errors.js';

/**
 * Parquet and Arrow IPC files as an embedded source, read by the launcher itself (no Spark). The
 * files are made of units — Parquet row groups, Arrow record batches — and each partition gets a
 * contiguous, even share of the rows, as Spark's `parallelize` splits a list: a unit that straddles
 * two partitions' shares is cut between them (a zero-copy slice of an Arrow batch; an offset and
 * limit within a Parquet row group), so a file written as one large batch still spreads over every
 * partition. A partition's rows reach the worker as Arrow IPC streams, one per piece of a unit, back
 * to back.
 *
 * Parquet is decoded by parquet-wasm (the Rust `parquet` and `arrow` crates compiled to
 * WebAssembly): it turns a row group straight into an Arrow IPC stream, which the worker reads
 * with `apache-arrow` without a per-row step, and it reads a file through a file-backed `Blob`, so
 * only the row group being sent is in memory. (A pure JavaScript reader such as hyparquet yields
 * rows or plain columns, which would need converting to Arrow value by value.)
 */

/** Rows per record batch decoded from Parquet: as Spark's `maxRecordsPerBatch`, so per-batch costs stay small. */
const PARQUET_BATCH_ROWS = 10_000;

/** A file source: `{ parquet: path }` or `{ arrow: path }`; a path is a file or a directory of them. */
export type FileSource = { parquet: string } | { arrow: string };

/** One unit of a file source: a Parquet row group or an Arrow record batch. */
interface Unit {
  file: string;
  /** Parquet row group or Arrow record batch index. */
  index: number;
  /** Rows in the unit. */
  rows: number;
}

/** Rows `[begin, end)` of one unit: what a partition is made of. */
interface Piece<U> {
  unit: U;
  begin: number;
  end: number;
}

/**
 * The pieces of partition `p`'s share of the rows: rows `[⌊p·n/P⌋, ⌊(p+1)·n/P⌋)` of all units back
 * to back, so shares differ by one row at most.
 */
export function piecesOf<U extends { rows: number }>(units: readonly U[], partitions: number, p: number): Piece<U>[] {
  const total = units.reduce((n, u) => n + u.rows, 0);
  const from = Math.floor((p * total) / partitions);
  const to = Math.floor(((p + 1) * total) / partitions);
  const pieces: Piece<U>[] = [];
  let start = 0;
  for (const unit of units) {
    const begin = Math.max(from, start) - start;
    const end = Math.min(to, start + unit.rows) - start;
    if (end > begin) pieces.push({ unit, begin, end });
    start += unit.rows;
    if (start >= to) break;
  }
  return pieces;
}

/** The files of `path`: the file itself, or the directory's files with the extension, by name. */
async function filesOf(path: string, ext: string, option: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new InvalidOptionError(option, `cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => n.endsWith(ext) && !n.startsWith('.') && !n.startsWith('_')).sort();
  if (names.length === 0) throw new InvalidOptionError(option, `directory "${path}" holds no ${ext} file`);
  return names.map((n) => join(path, n));
}

type ParquetModule = typeof import('parquet-wasm');
let parquetModule: Promise<ParquetModule> | undefined;
/** Loaded on first use: only runs that serve Parquet pay for the WebAssembly module. */
const parquetWasm = (): Promise<ParquetModule> => (parquetModule ??= import('parquet-wasm'));

async function openParquet(file: string, option: string): Promise<ParquetFile> {
  const pw = await parquetWasm();
  try {
    return await pw.ParquetFile.fromFile(await openAsBlob(file));
  } catch (err) {
    throw new InvalidOptionError(option, `"${file}" is not a readable Parquet file: ${String((err as Error)?.message ?? err)}`);
  }
}

/** Every record batch of an Arrow IPC file or stream (file bytes are read whole). */
async function arrowBatches(file: string, option: string): Promise<RecordBatch[]> {
  // Loaded on first use: the package root (which a server module may import) does not load Arrow.
  const { RecordBatchReader } = await import('apache-arrow');
  try {
    return RecordBatchReader.from(await readFile(file)).readAll();
  } catch (err) {
    throw new InvalidOptionError(option, `"${file}" is not a readable Arrow IPC file or stream: ${(err as Error).message}`);
  }
}

/** A file source split into partitions; `arrowSlice(p)` may be read any number of times (retries). */
export interface ArrowPartitions {
  readonly partitions: number;
  readonly rowFormat: 'arrow';
  /** The Arrow IPC streams of partition `p`, one per unit. */
  arrowSlice(partition: number): AsyncIterable<Uint8Array>;
}

/** Lists the units of a Parquet or Arrow file source and splits them into `partitions`. */
export async function partitionFiles(source: FileSource, partitions: number): Promise<ArrowPartitions> {
  const units: Unit[] = [];
  if ('parquet' in source) {
    const option = 'data.parquet';
    const files = await filesOf(source.parquet, '.parquet', option);
    const opened = new Map<string, ParquetFile>();
    for (const file of files) {
      const pq = await openParquet(file, option);
      opened.set(file, pq);
      pq.metadata()
        .rowGroups()
        .forEach((group, index) => units.push({ file, index, rows: group.numRows() }));
    }
    return {
      partitions,
      rowFormat: 'arrow',
      arrowSlice: async function* (p) {
        for (const { unit, begin, end } of piecesOf(units, partitions, p)) {
          const whole = begin === 0 && end === unit.rows;
          const piece = whole ? {} : { offset: begin, limit: end - begin };
          const table = await opened.get(unit.file)!.read({ rowGroups: [unit.index], batchSize: PARQUET_BATCH_ROWS, ...piece });
          yield table.intoIPCStream();
        }
      },
    };
  }
  const option = 'data.arrow';
  const files = await filesOf(source.arrow, '.arrow', option);
  const { Table, tableToIPC } = await import('apache-arrow');
  const batches = new Map<string, RecordBatch[]>();
  for (const file of files) {
    const all = await arrowBatches(file, option);
    batches.set(file, all);
    all.forEach((batch, index) => units.push({ file, index, rows: batch.numRows }));
  }
  return {
    partitions,
    rowFormat: 'arrow',
    arrowSlice: async function* (p) {
      // One stream per piece: the piece's buffers are written once, with no table of the whole share.
      for (const { unit, begin, end } of piecesOf(units, partitions, p)) {
        const batch = batches.get(unit.file)![unit.index]!;
        yield tableToIPC(new Table([begin === 0 && end === unit.rows ? batch : batch.slice(begin, end)]), 'stream');
      }
    },
  };
}
