import { openAsBlob } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RecordBatchReader, Table, tableToIPC, type RecordBatch } from 'apache-arrow';
import type { ParquetFile } from 'parquet-wasm';
import { InvalidOptionError } from '../errors.js';

/**
 * Parquet and Arrow IPC files as an embedded source, read by the launcher itself (no Spark). The
 * files are split into units — Parquet row groups, Arrow record batches — and each partition gets a
 * contiguous run of units, as Spark's `parallelize` splits a list; its rows reach the worker as
 * Arrow IPC streams, one per unit, back to back.
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

/** One unit of a file source: what a partition is made of. */
interface Unit {
  file: string;
  /** Parquet row group or Arrow record batch index. */
  index: number;
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
  const bounds = (p: number): [number, number] => [Math.floor((p * units.length) / partitions), Math.floor(((p + 1) * units.length) / partitions)];
  if ('parquet' in source) {
    const option = 'data.parquet';
    const files = await filesOf(source.parquet, '.parquet', option);
    const opened = new Map<string, ParquetFile>();
    for (const file of files) {
      const pq = await openParquet(file, option);
      opened.set(file, pq);
      for (let g = 0; g < pq.metadata().numRowGroups(); g++) units.push({ file, index: g });
    }
    return {
      partitions,
      rowFormat: 'arrow',
      arrowSlice: async function* (p) {
        const [from, to] = bounds(p);
        for (const unit of units.slice(from, to)) {
          const table = await opened.get(unit.file)!.read({ rowGroups: [unit.index], batchSize: PARQUET_BATCH_ROWS });
          yield table.intoIPCStream();
        }
      },
    };
  }
  const option = 'data.arrow';
  const files = await filesOf(source.arrow, '.arrow', option);
  const batches = new Map<string, RecordBatch[]>();
  for (const file of files) {
    const all = await arrowBatches(file, option);
    batches.set(file, all);
    all.forEach((_, index) => units.push({ file, index }));
  }
  return {
    partitions,
    rowFormat: 'arrow',
    arrowSlice: async function* (p) {
      const [from, to] = bounds(p);
      // One stream per batch: the batch's buffers are written once, with no table of the whole slice.
      for (const unit of units.slice(from, to)) yield tableToIPC(new Table([batches.get(unit.file)![unit.index]!]), 'stream');
    },
  };
}
