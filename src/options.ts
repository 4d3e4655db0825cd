import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from './errors.js';
import type { EmbeddedSource } from './spark/data-source.js';
import type { Launcher } from './spark/launcher.js';
import type { SparkApplication } from './spark/spark-app.js';
import { validateSparkSource, type SparkSource } from './spark/spark-source.js';
import { isSubjectToken } from './transport/subjects.js';

/** Where the worker finds the partition server: a module path or URL, and which export. */
export type ServerRef = string | URL | { module: string | URL; export?: string };

/** Options of a {@link Cluster}. Validated once, by its constructor. */
export interface ClusterOptions<Row = unknown, Config = unknown> {
  /**
   * The module that exports the partition server (an instance, a class, or a factory taking the
   * config), as a path, a `file:` URL, or `{ module, export }`. Default export: `default`.
   */
  server: ServerRef;
  /** Rows to serve (embedded launcher): an array, an iterable, or `{ range: { start, end, step } }`. */
  data?: EmbeddedSource<Row>;
  /** Number of partitions (and so of partition servers). Default: 2. */
  partitions?: number;
  /** JSON-serializable object handed to every partition server as `ctx.config`. */
  config?: Config;
  /** A launcher of your own; default: the embedded launcher. */
  launcher?: Launcher;
  /** A running NATS server to use; default: a private nats-server on a random loopback port. */
  natsUrl?: string;
  /** Path of the nats-server binary; default: `$SPS_NATS_SERVER`, then `.venv`, then `PATH`. */
  natsServer?: string;
  /** Prefix of the cluster id (letters, digits, `_`, `-`). Default: `sps`. */
  name?: string;
  /** How long `start()` waits for every partition to serve. Default: 60000 ms. */
  startTimeoutMs?: number;
  /** How long `stop()` waits for every partition's result. Default: 30000 ms. */
  stopTimeoutMs?: number;
  /** Default timeout of `request()` and `requestAll()`. Default: 10000 ms. */
  requestTimeoutMs?: number;
  /** Failed attempts of one partition before giving up, as Spark's `spark.task.maxFailures`. Default: 4. */
  maxFailures?: number;
  /** Host the partition servers bind to. Default: `127.0.0.1`. */
  bindHost?: string;
  /** Host the partition servers register (what clients connect to). Default: `bindHost`. */
  advertiseHost?: string;
  /** Extra environment variables for the worker processes. */
  env?: Record<string, string>;
  /** Where worker output lines go. Default: this process's stderr; `false` drops them. */
  log?: ((line: string) => void) | false;
  /**
   * Spark master (`local[N]`, `local[N,F]`, `spark://host:port`, or anything spark-submit
   * accepts): runs the partitions as the tasks of a Spark job in an application started for the
   * run. Needs Java 17+ and pyspark (`npm run setup`). `local[N]` becomes `local[N,maxFailures]`.
   */
  master?: string;
  /** Spark configuration for the application started on `master`, e.g. `{ 'spark.driver.memory': '512m' }`. */
  sparkConf?: Record<string, string>;
  /** Spark home for `master` (a directory with `bin/spark-submit`). Default: `$SPARK_HOME`, then pyspark in `.venv`. */
  sparkHome?: string;
  /** A running {@link SparkApplication} to run on (shared between runs and clusters); instead of `master`. */
  spark?: SparkApplication;
  /**
   * What a Spark run serves: a range, in-memory rows, text files, parquet / json / csv on a path,
   * a SQL query or a table, repartitioned to `partitions`. `data` works with Spark too.
   */
  source?: SparkSource;
  /** Keep the result records persisted in the Spark application after `stop()` (see `Cluster.resultDataset`). Default: false. */
  cacheResult?: boolean;
  /**
   * Run the Spark job in barrier mode: all partitions start together and, when one fails, all
   * restart together (as a new stage attempt). Default: false.
   */
  barrier?: boolean;
}

/** Options after validation, with defaults applied. */
export interface ResolvedOptions<Row, Config> {
  serverModule: string;
  serverExport: string;
  data: EmbeddedSource<Row> | undefined;
  partitions: number;
  config: Config | undefined;
  configJson: string;
  launcher: Launcher | undefined;
  natsUrl: string | undefined;
  natsServer: string | undefined;
  name: string;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  requestTimeoutMs: number;
  maxFailures: number;
  bindHost: string;
  advertiseHost: string | undefined;
  env: Record<string, string>;
  log: ((line: string) => void) | undefined;
  master: string | undefined;
  sparkConf: Record<string, string>;
  sparkHome: string | undefined;
  spark: SparkApplication | undefined;
  source: SparkSource | undefined;
  cacheResult: boolean;
  barrier: boolean;
}

function positiveInt(name: string, v: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidOptionError(name, `must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function resolveServer(ref: unknown): { module: string; export: string } {
  const toPath = (m: unknown, option: string): string => {
    if (m instanceof URL) return m.protocol === 'file:' ? fileURLToPath(m) : m.href;
    if (typeof m !== 'string' || m === '') throw new InvalidOptionError(option, 'must be a module path, a file URL, or { module, export }');
    if (m.startsWith('file:')) return fileURLToPath(m);
    return isAbsolute(m) ? m : resolve(m);
  };
  if (typeof ref === 'string' || ref instanceof URL) return { module: toPath(ref, 'server'), export: 'default' };
  if (typeof ref === 'object' && ref !== null && 'module' in ref) {
    const exp = (ref as { export?: unknown }).export ?? 'default';
    if (typeof exp !== 'string' || exp === '') throw new InvalidOptionError('server.export', 'must be a non-empty string');
    return { module: toPath((ref as { module: unknown }).module, 'server.module'), export: exp };
  }
  throw new InvalidOptionError('server', 'is required: a module path, a file URL, or { module, export }');
}

/** Validates cluster options and applies defaults; errors name the option. */
export function resolveOptions<Row, Config>(o: ClusterOptions<Row, Config>): ResolvedOptions<Row, Config> {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError('options', 'must be an object');
  const server = resolveServer(o.server);
  let configJson = '';
  if (o.config !== undefined) {
    try {
      configJson = JSON.stringify(o.config);
    } catch (err) {
      throw new InvalidOptionError('config', `must be JSON-serializable (${(err as Error).message})`);
    }
    if (configJson === undefined) throw new InvalidOptionError('config', 'must be JSON-serializable');
  }
  const name = o.name ?? 'sps';
  if (!isSubjectToken(name)) throw new InvalidOptionError('name', `may only hold letters, digits, "_" and "-", got "${name}"`);
  for (const k of ['natsUrl', 'natsServer', 'bindHost', 'advertiseHost'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) throw new InvalidOptionError(k, 'must be a non-empty string');
  }
  if (o.env !== undefined && (typeof o.env !== 'object' || Object.values(o.env).some((v) => typeof v !== 'string'))) {
    throw new InvalidOptionError('env', 'must map names to string values');
  }
  if (o.log !== undefined && o.log !== false && typeof o.log !== 'function') throw new InvalidOptionError('log', 'must be a function or false');
  resolveSparkOptions(o);
  return {
    serverModule: server.module,
    serverExport: server.export,
    data: o.data,
    partitions: positiveInt('partitions', o.partitions, 2, 1024),
    config: o.config,
    configJson,
    launcher: o.launcher,
    natsUrl: o.natsUrl,
    natsServer: o.natsServer,
    name,
    startTimeoutMs: positiveInt('startTimeoutMs', o.startTimeoutMs, 60_000),
    stopTimeoutMs: positiveInt('stopTimeoutMs', o.stopTimeoutMs, 30_000),
    requestTimeoutMs: positiveInt('requestTimeoutMs', o.requestTimeoutMs, 10_000),
    maxFailures: positiveInt('maxFailures', o.maxFailures, 4, 100),
    bindHost: o.bindHost ?? '127.0.0.1',
    advertiseHost: o.advertiseHost,
    env: o.env ?? {},
    log: o.log === false ? undefined : (o.log ?? ((line: string) => process.stderr.write(line + '\n'))),
    master: o.master,
    sparkConf: o.sparkConf ?? {},
    sparkHome: o.sparkHome,
    spark: o.spark,
    source: o.source,
    cacheResult: o.cacheResult ?? false,
    barrier: o.barrier ?? false,
  };
}

/** Validates the Spark options; errors name the option. */
function resolveSparkOptions(o: ClusterOptions<unknown, unknown>): void {
  for (const k of ['master', 'sparkHome'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k].trim() === '')) throw new InvalidOptionError(k, 'must be a non-empty string');
  }
  if (o.sparkConf !== undefined) {
    if (typeof o.sparkConf !== 'object' || o.sparkConf === null) throw new InvalidOptionError('sparkConf', 'must map Spark configuration keys to string values');
    for (const [k, v] of Object.entries(o.sparkConf)) if (typeof v !== 'string') throw new InvalidOptionError(`sparkConf.${k}`, `must be a string, got ${JSON.stringify(v)}`);
  }
  for (const k of ['cacheResult', 'barrier'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new InvalidOptionError(k, 'must be a boolean');
  }
  const spark = o.master !== undefined || o.spark !== undefined;
  if (o.master !== undefined && o.spark !== undefined) throw new InvalidOptionError('spark', 'give either master (a new Spark application) or spark (a running one), not both');
  if (o.spark !== undefined && (typeof o.spark !== 'object' || o.spark === null || typeof (o.spark as { request?: unknown }).request !== 'function')) {
    throw new InvalidOptionError('spark', 'must be a SparkApplication (from SparkApplication.start())');
  }
  if (o.launcher !== undefined && spark) throw new InvalidOptionError('launcher', 'cannot be combined with master or spark');
  if (!spark) {
    for (const k of ['source', 'sparkConf', 'sparkHome', 'cacheResult', 'barrier'] as const) {
      if (o[k] !== undefined) throw new InvalidOptionError(k, 'needs a Spark master (option master) or application (option spark)');
    }
  }
  if (o.spark !== undefined) {
    for (const k of ['sparkConf', 'sparkHome'] as const) {
      if (o[k] !== undefined) throw new InvalidOptionError(k, 'applies to an application started on master; the spark application was configured when it started');
    }
  }
  if (o.source !== undefined) {
    if (o.data !== undefined) throw new InvalidOptionError('source', 'give either data or source, not both');
    validateSparkSource(o.source);
  }
}
