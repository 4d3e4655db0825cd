import { SparkError } from '../errors.js';
import { checkOptionsBag, fieldsOf } from '../option-fields.js';
import type { SparkApplication } from './spark-app.js';

/** How {@link ResultDataset.save} writes. */
export interface SaveOptions {
  /** `parquet` (default), `json`, or any format Spark's DataFrameWriter knows. */
  format?: string;
  /** Spark save mode: `errorifexists` (default), `overwrite`, `append`, `ignore`. */
  mode?: 'errorifexists' | 'overwrite' | 'append' | 'ignore';
}

/** The field names of {@link SaveOptions}. */
const SAVE_FIELDS = fieldsOf<SaveOptions>({ format: true, mode: true });

/**
 * The result records of a cluster run, persisted in its Spark application (option
 * `cacheResult`), where they stay after `stop()` until {@link unpersist}. When the partitions
 * returned Arrow (a result with a schema), it is saved as a DataFrame with the Arrow schema's
 * columns and types; otherwise Spark infers a schema from the records, and records that are not
 * objects become `{ value }`.
 */
export class ResultDataset<Result = unknown> implements AsyncDisposable {
  constructor(
    private readonly app: SparkApplication,
    /** Id of the dataset in the application. */
    readonly id: string,
    /** Records the run returned. */
    readonly size: number,
    private readonly ownsApp: boolean,
  ) {}

  /** Counts the records in Spark. */
  async count(): Promise<number> {
    const r = await this.app.request('dataset', { op: 'count', id: this.id });
    if (r.t !== 'count') throw new SparkError('SPS_SPARK_RUNNER', `runner answered "count" with "${r.t}"`);
    return r.count;
  }

  /** Brings every record back (for small datasets; a big one must be saved instead). */
  async collect(): Promise<Result[]> {
    const r = await this.app.request('dataset', { op: 'collect', id: this.id });
    if (r.t !== 'records') throw new SparkError('SPS_SPARK_RUNNER', `runner answered "collect" with "${r.t}"`);
    return r.records as Result[];
  }

  /** Writes the records to `path` (a directory, as Spark writes) as parquet or json. */
  async save(path: string, opts: SaveOptions = {}): Promise<void> {
    checkOptionsBag(opts, SAVE_FIELDS, 'dataset.save');
    await this.app.request('dataset', { op: 'save', id: this.id, path, format: opts.format ?? 'parquet', mode: opts.mode ?? 'errorifexists' }, 600_000);
  }

  /** Unpersists the records (as `unpersist()`) when an `await using` scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.unpersist();
  }

  /**
   * Drops the records from Spark's cache. When the cluster started the application itself (option
   * `master`, not `spark`), this also ends the application, which only lived on for this dataset.
   */
  async unpersist(): Promise<void> {
    if (!this.app.isClosed) await this.app.request('dataset', { op: 'unpersist', id: this.id });
    if (this.ownsApp) await this.app.close();
  }
}
