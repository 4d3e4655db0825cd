import type { Inspector } from './inspection.js';
import { createLogger, lineLogger, LOG_LEVELS, SILENT_LOGGER, workerLevel, type LogLevel, type Logger } from '../log/logger.js';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../errors.js';
import { RANGE_FIELDS, type EmbeddedSource, type RangeSource } from './launch/data-source.js';
import type { FileSource } from './launch/file-source.js';
import type { Launcher } from './launch/launcher.js';
import type { SparkApplication } from '../spark/spark-app.js';
import { validateSparkSource, type SparkSource } from '../spark/spark-source.js';
import { isSubjectToken } from '../protocol/subjects.js';
import { checkHttpChoice, type HttpChoice } from '../transport/http-choice.js';
import type { Isolation } from './launch/launcher.js';
import { DEFAULT_HEARTBEAT_MS } from '../worker/worker-env.js';
import { fieldsOf, isObject, rejectUnknownFields, type UnionKeys } from '../option-fields.js';
import type { PartitionBy } from './launch/key-placement.js';
import { checkUpdatesSubject } from '../protocol/updates.js';

/** Where the worker finds the partition server: a module path or URL, and which export. */
export type ServerRef =
  | string
  | URL
  | {
      /** The module, as a path (a relative one resolves against the current directory) or a URL. */
      module: string | URL;
      /** Name of the export within `module`. Default: `default`. */
      export?: string;
    };

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
  /**
   * A running NATS server or cluster to use: one URL, several comma-separated, or an array. Every
   * process of the run (driver, workers, Spark runner) gets every URL and fails over between them.
   * Give `natsAuth`/`natsTls` to log in, or `natsAccount` to have the run's own identities there.
   * Default: a private nats-server started for the run, which admits only the run's own nkey
   * users, each limited to its role's subjects.
   */
  natsUrl?: string | string[];
  /** Credentials for `natsUrl`, used by the driver, the workers and the Spark runner alike. */
  natsAuth?: NatsAuthOption;
  /**
   * The run's own identities on a NATS cluster you run with decentralized auth (`natsUrl`): the
   * driver issues one user per identity (driver, each partition, runner, client), each limited to
   * its role's subjects as on the private server, signed by this account's signing key. Make the
   * account with `sps credentials --nats-config DIR`. Not with `natsAuth`.
   */
  natsAccount?: NatsAccountOption;
  /** TLS for `natsUrl`: the CA to verify the server with, and a client certificate for mutual TLS. */
  natsTls?: {
    /** PEM file of the CA that signed the server's certificate; without it, the system's CAs. */
    caFile?: string;
    /** PEM file of the client certificate for mutual TLS; needs `keyFile`. */
    certFile?: string;
    /** PEM file of the client certificate's private key; needs `certFile`. */
    keyFile?: string;
  };
  /**
   * Address (`host` or `host:port`) the private nats-server listens on. Default: 127.0.0.1, or for
   * a Spark master on other hosts the driver's address as Spark uses it (`spark.driver.bindAddress`,
   * `spark.driver.host`, `SPARK_LOCAL_IP`, else this host's first non-loopback address).
   */
  natsListen?: string;
  /** URL workers are given for the private nats-server. Default: from `natsListen` (or `spark.driver.host`). */
  natsAdvertiseUrl?: string;
  /**
   * Serve the private nats-server over TLS only: `true` makes a CA and certificate for the run,
   * or give your own PEM files. Driver, workers and runner verify the server against the CA.
   */
  tls?:
    | boolean
    | {
        /** PEM file of the server's certificate. */
        certFile: string;
        /** PEM file of the server certificate's private key. */
        keyFile: string;
        /** PEM file of the CA that signed `certFile`; driver, workers and runner verify the server with it. */
        caFile: string;
      };
  /** Path of the nats-server binary; default: `$SPS_NATS_SERVER`, then `.venv`, then the `npx sps setup` cache, then `PATH`. */
  natsServer?: string;
  /** Prefix of the cluster id (letters, digits, `_`, `-`). Default: `sps`. */
  name?: string;
  /**
   * Timeouts of `start()`, one per stage, each named in its error. Once the partitions are launched
   * (after the Spark application and the submit), `registerTimeoutMs` bounds how long until every
   * partition's worker registered, and `startTimeoutMs` how long until every partition serves
   * (`StartTimeoutError`, `.stage` `'register'` / `'serve'`). Defaults: 60000 / 60000 ms.
   */
  startTimeoutMs?: number;
  /** How long, in ms, until every launched partition's worker registered (stage `'register'`). Default: 60000 ms. */
  registerTimeoutMs?: number;
  /** How long a Spark application started for the run (option `master`) may take to be ready. Default: 180000 ms. */
  sparkStartTimeoutMs?: number;
  /** How long the Spark runner may take to accept the run's job. Default: 60000 ms. */
  submitTimeoutMs?: number;
  /** How long `stop()` waits for every partition's result. Default: 30000 ms. */
  stopTimeoutMs?: number;
  /** Default timeout of `request()` and `requestAll()`. Default: 10000 ms. */
  requestTimeoutMs?: number;
  /**
   * Liveness: the driver sends a heartbeat every `heartbeatMs` (default 1000), and each worker
   * ticks to its launcher (or Spark task) as often. A worker whose event loop is silent for
   * `hangTimeoutMs` (default 10000) is declared hung, killed and retried like a crash; workers leave
   * by themselves when the driver is silent for `driverTimeoutMs` (default 45000, longer than the
   * reconnect window so a restarted NATS server is waited out).
   */
  heartbeatMs?: number;
  /** Silence, in ms, after which a worker is declared hung, killed and retried. Default: 10000 ms. */
  hangTimeoutMs?: number;
  /** Driver silence, in ms, after which a worker leaves by itself. Default: 45000 ms. */
  driverTimeoutMs?: number;
  /**
   * How long the driver, workers and runner keep reconnecting when the NATS server goes away
   * (a restart of a server you run, `natsUrl`). Default: 30000 ms. Losing the private server
   * fails the run at once instead (ComponentLostError).
   */
  reconnectWindowMs?: number;
  /** Failed attempts of one partition before giving up, as Spark's `spark.task.maxFailures`. Default: 4. */
  maxFailures?: number;
  /**
   * Address the partition servers bind HTTP to. Default: 127.0.0.1 on this machine; with a Spark
   * master on other hosts, each executor's own address (`SPARK_LOCAL_IP`, else the address that
   * routes to the driver).
   */
  bindHost?: string;
  /**
   * Host the partition servers register (what clients connect to): a host, or a function of the
   * partition and the address its executor registered. Default: the bound address.
   */
  advertiseHost?: string | ((partition: number, executorHost: string) => string);
  /** Extra environment variables for the worker processes. */
  env?: Record<string, string>;
  /**
   * Where the run's log goes as text lines (`[sps <cluster> p<partition>/a<attempt>] message`), or
   * `false` to drop it. Without it (and without `logger`), the run logs JSON records on stderr.
   */
  log?: ((line: string) => void) | false;
  /**
   * A pino-compatible logger (`debug`, `info`, `warn`, `error`, `child`) for the driver's and the
   * workers' records: the cluster logs on `logger.child({ cluster })`, and each worker's records
   * on `child({ cluster, partition, attempt })`. Default: pino, JSON lines on stderr. Takes
   * precedence over `log`.
   */
  logger?: Logger;
  /** The level the run logs at: `debug`, `info` (default), `warn`, `error` or `silent` (the workers too). */
  logLevel?: LogLevel;
  /**
   * An xstate inspector (`(event: InspectionEvent) => void`) that sees the whole system: the
   * driver's supervisor (and Spark job) actors, and every partition's server actor, whose
   * transitions the workers then report over the bus (only when this is set). See the README's
   * "Inspection".
   */
  inspect?: Inspector;
  /**
   * Spark master (`local[N]`, `local[N,F]`, `spark://host:port`, or anything spark-submit
   * accepts): runs the partitions as the tasks of a Spark job in an application started for the
   * run. Needs Java 17+ and pyspark (`npx sps setup --spark`, or `npm run setup` in a clone). `local[N]` becomes `local[N,maxFailures]`.
   */
  master?: string;
  /** Spark configuration for the application started on `master`, e.g. `{ 'spark.driver.memory': '512m' }`. */
  sparkConf?: Record<string, string>;
  /** Spark home for `master` (a directory with `bin/spark-submit`). Default: `$SPARK_HOME`, then pyspark in `.venv` or the `npx sps setup --spark` cache. */
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
  /**
   * How the rows of a Spark DataFrame source (sql, table, parquet, json, csv) reach the partition
   * servers: `arrow` (Arrow record batches, `rows.arrow()`; an error when a column's type has no
   * Arrow form) or `rows` (JSON rows). Default: Arrow, falling back to JSON rows by itself (and
   * saying so in the log) when a column's type has no Arrow form.
   */
  format?: 'arrow' | 'rows';
  /**
   * How 64-bit integer columns of Arrow rows become row values: `number` (default; a value beyond
   * 2^53 fails the partition with `SPS_ROWS_LONG_OVERFLOW`) or `bigint`. `rows.arrow()` always
   * has them as BigInt64Array.
   */
  longs?: 'number' | 'bigint';
  /**
   * How collectives send their data unless a call says otherwise (`transport` of a call):
   * `'auto'` (default) over direct, authenticated sockets between partitions (in groups of more
   * than 8, only values of 64 KB and more; on a TLS bus the sockets speak TLS, both ends pinned);
   * `'nats'` always through nats-server; `'direct'` always over the sockets.
   */
  collectiveTransport?: 'nats' | 'direct' | 'auto';
  /**
   * The partitions' HTTP server (and the dashboard's): `'uws'` native uWebSockets.js (a partition
   * fails where no binary for its Node version and glibc loads), `'node'` the `node:http` server
   * with `ws`, or `'auto'` (default): uWebSockets.js where it loads, else `node:http`, with one
   * warning saying why. A server's own `httpServer` factory takes precedence.
   */
  http?: HttpChoice;
  /**
   * How partitions are isolated (embedded launcher): `'process'` (default) runs each partition
   * attempt as its own Node process; `'thread'` runs them as worker threads of one partition host
   * process, which starts faster and costs less memory per partition. A thread that throws, exits
   * or hangs fails its own attempt only; the host's death fails every attempt it ran. Threads
   * serve HTTP with `node:http` (`http: 'auto'` means `'node'` there; `'uws'` is refused: a
   * uWebSockets.js app open in a dying thread aborts the whole host). See docs/options.md.
   */
  isolation?: Isolation;
  /** With `isolation: 'thread'`, each thread's heap limit (old generation) in MB; one that exceeds it fails alone. Default: Node's. */
  threadHeapMb?: number;
  /**
   * Places each row on the partition that owns its key (docs/keys.md) instead of by position: a
   * row field (a DataFrame column on Spark) whose value is the key, or, with the embedded launcher
   * only, a function of the row returning the key. Keys are strings or integers; `cluster.partitionOf(key)`
   * then names the partition holding a key's rows, and `requestByKey` reaches it.
   */
  partitionBy?: PartitionBy<Row>;
  /**
   * Live updates (docs/updates.md): a subject with one `*` for the key, e.g. `"orders.*"`. The run
   * keeps a JetStream stream of it (on the private bus, which then runs JetStream); an update
   * published on `orders.<key>` reaches the server of the partition owning `<key>` (`onUpdate`),
   * in order, and a retried attempt replays its partition's updates since the run started.
   * `cluster.credentials('publisher')` may publish them and nothing else.
   */
  updates?: string;
  /**
   * Events (docs/updates.md#events): partitions publish to a JetStream stream of the run with
   * `ctx.publish(subject, data)`, acknowledged once stored, and clients read it with the
   * client credentials. Default false.
   */
  events?: boolean;
}

/** The account a run issues its users in, on a NATS cluster you run (option `natsAccount`). */
export interface NatsAccountOption {
  /** The account's public key (`A…`). */
  account: string;
  /** A file holding the account's signing key seed (`SA…`); read once at start, never logged or passed on. */
  signingKeyFile: string;
  /** How long the run's users are valid (their JWTs expire then, and the servers close their connections). Default: 7 days. */
  credentialTtlMs?: number;
}

/** Credentials for a user-run NATS server (option `natsAuth`). */
export type NatsAuthOption =
  | {
      /** The server's authentication token. */
      token: string;
    }
  | {
      /** User name. */
      user: string;
      /** The user's password. */
      pass: string;
    }
  | {
      /** The user's nkey seed (the private key, as in an nkey seed file). */
      nkeySeed: string;
    }
  | {
      /** Path of a `.creds` file (JWT and nkey seed); the driver reads it and hands its text to workers. */
      credsFile: string;
    };

/** Options after validation, with defaults applied. */
export interface ResolvedOptions<Row, Config> {
  /** Module of option `server`, as workers import it. */
  serverModule: string;
  /** Export name of option `server` within its module. */
  serverExport: string;
  /** Option `data` as resolved; see {@link ClusterOptions}. */
  data: EmbeddedSource<Row> | undefined;
  /** Option `partitions` as resolved; see {@link ClusterOptions}. */
  partitions: number;
  /** Option `config` as resolved; see {@link ClusterOptions}. */
  config: Config | undefined;
  /** Option `config` serialized as JSON (`''` when absent). */
  configJson: string;
  /** Option `launcher` as resolved; see {@link ClusterOptions}. */
  launcher: Launcher | undefined;
  /** Option `natsUrl` as resolved (every URL, comma-separated); see {@link ClusterOptions}. */
  natsUrl: string | undefined;
  /** Option `natsAccount` as resolved; see {@link ClusterOptions}. */
  natsAccount: Required<NatsAccountOption> | undefined;
  /** Option `natsAuth` as resolved; see {@link ClusterOptions}. */
  natsAuth: NatsAuthOption | undefined;
  /** Option `natsTls` as resolved; see {@link ClusterOptions}. */
  natsTls:
    | {
        /** PEM file of the CA that signed the server's certificate. */
        caFile?: string;
        /** PEM file of the client certificate for mutual TLS. */
        certFile?: string;
        /** PEM file of the client certificate's private key. */
        keyFile?: string;
      }
    | undefined;
  /** Option `natsListen` as resolved; see {@link ClusterOptions}. */
  natsListen: string | undefined;
  /** Option `natsAdvertiseUrl` as resolved; see {@link ClusterOptions}. */
  natsAdvertiseUrl: string | undefined;
  /** Option `tls` as resolved; see {@link ClusterOptions}. */
  tls:
    | false
    | true
    | {
        /** PEM file of the server's certificate. */
        certFile: string;
        /** PEM file of the server certificate's private key. */
        keyFile: string;
        /** PEM file of the CA that signed `certFile`. */
        caFile: string;
      };
  /** Option `natsServer` as resolved; see {@link ClusterOptions}. */
  natsServer: string | undefined;
  /** Option `name` as resolved; see {@link ClusterOptions}. */
  name: string;
  /** Option `startTimeoutMs` as resolved; see {@link ClusterOptions}. */
  startTimeoutMs: number;
  /** Option `registerTimeoutMs` as resolved; see {@link ClusterOptions}. */
  registerTimeoutMs: number;
  /** Option `sparkStartTimeoutMs` as resolved; see {@link ClusterOptions}. */
  sparkStartTimeoutMs: number;
  /** Option `submitTimeoutMs` as resolved; see {@link ClusterOptions}. */
  submitTimeoutMs: number;
  /** Option `stopTimeoutMs` as resolved; see {@link ClusterOptions}. */
  stopTimeoutMs: number;
  /** Option `requestTimeoutMs` as resolved; see {@link ClusterOptions}. */
  requestTimeoutMs: number;
  /** Option `maxFailures` as resolved; see {@link ClusterOptions}. */
  maxFailures: number;
  /** Option `heartbeatMs` as resolved; see {@link ClusterOptions}. */
  heartbeatMs: number;
  /** Option `hangTimeoutMs` as resolved; see {@link ClusterOptions}. */
  hangTimeoutMs: number;
  /** Option `driverTimeoutMs` as resolved; see {@link ClusterOptions}. */
  driverTimeoutMs: number;
  /** Option `reconnectWindowMs` as resolved; see {@link ClusterOptions}. */
  reconnectWindowMs: number;
  /** Option `bindHost` as resolved; see {@link ClusterOptions}. */
  bindHost: string | undefined;
  /** Option `advertiseHost` as resolved; see {@link ClusterOptions}. */
  advertiseHost: string | ((partition: number, executorHost: string) => string) | undefined;
  /** Option `env` as resolved; see {@link ClusterOptions}. */
  env: Record<string, string>;
  /** Where the run's records go (the cluster binds `cluster`, launchers `partition` and `attempt`). */
  logger: Logger;
  /** The level the workers log at. */
  logLevel: LogLevel;
  /** Option `inspect` as resolved; see {@link ClusterOptions}. */
  inspect: Inspector | undefined;
  /** Option `master` as resolved; see {@link ClusterOptions}. */
  master: string | undefined;
  /** Option `sparkConf` as resolved; see {@link ClusterOptions}. */
  sparkConf: Record<string, string>;
  /** Option `sparkHome` as resolved; see {@link ClusterOptions}. */
  sparkHome: string | undefined;
  /** Option `spark` as resolved; see {@link ClusterOptions}. */
  spark: SparkApplication | undefined;
  /** Option `source` as resolved; see {@link ClusterOptions}. */
  source: SparkSource | undefined;
  /** Option `cacheResult` as resolved; see {@link ClusterOptions}. */
  cacheResult: boolean;
  /** Option `barrier` as resolved; see {@link ClusterOptions}. */
  barrier: boolean;
  /** Option `format` as resolved; see {@link ClusterOptions}. */
  format: 'arrow' | 'rows' | undefined;
  /** Option `longs` as resolved; see {@link ClusterOptions}. */
  longs: 'number' | 'bigint';
  /** Option `collectiveTransport` as resolved (default `'auto'`); see {@link ClusterOptions}. */
  collectiveTransport: 'nats' | 'direct' | 'auto';
  /** Option `http` as resolved (default `'auto'`; `'node'` for `isolation: 'thread'`); see {@link ClusterOptions}. */
  http: HttpChoice;
  /** Option `isolation` as resolved (default `'process'`); see {@link ClusterOptions}. */
  isolation: Isolation;
  /** Option `threadHeapMb` as resolved; see {@link ClusterOptions}. */
  threadHeapMb: number | undefined;
  /** Option `partitionBy` as resolved; see {@link ClusterOptions}. */
  partitionBy: PartitionBy<Row> | undefined;
  /** Option `updates` as resolved; see {@link ClusterOptions}. */
  updates: string | undefined;
  /** Option `events` as resolved; see {@link ClusterOptions}. */
  events: boolean;
}

/** The names of {@link ClusterOptions}. */
const CLUSTER_OPTIONS = fieldsOf<ClusterOptions>({
  server: true,
  data: true,
  partitions: true,
  config: true,
  launcher: true,
  natsUrl: true,
  natsAuth: true,
  natsAccount: true,
  natsTls: true,
  natsListen: true,
  natsAdvertiseUrl: true,
  tls: true,
  natsServer: true,
  name: true,
  startTimeoutMs: true,
  registerTimeoutMs: true,
  sparkStartTimeoutMs: true,
  submitTimeoutMs: true,
  stopTimeoutMs: true,
  requestTimeoutMs: true,
  heartbeatMs: true,
  hangTimeoutMs: true,
  driverTimeoutMs: true,
  reconnectWindowMs: true,
  maxFailures: true,
  bindHost: true,
  advertiseHost: true,
  env: true,
  log: true,
  logger: true,
  logLevel: true,
  inspect: true,
  master: true,
  sparkConf: true,
  sparkHome: true,
  spark: true,
  source: true,
  cacheResult: true,
  barrier: true,
  format: true,
  longs: true,
  collectiveTransport: true,
  http: true,
  isolation: true,
  threadHeapMb: true,
  partitionBy: true,
  updates: true,
  events: true,
});

/** Every field that appears in one of the kinds of `natsAuth`. */
const NATS_AUTH_FIELDS = fieldsOf<Record<UnionKeys<NatsAuthOption>, unknown>>({ token: true, user: true, pass: true, nkeySeed: true, credsFile: true });
const NATS_ACCOUNT_FIELDS = fieldsOf<NatsAccountOption>({ account: true, signingKeyFile: true, credentialTtlMs: true });
const NATS_TLS_FIELDS = fieldsOf<NonNullable<ClusterOptions['natsTls']>>({ caFile: true, certFile: true, keyFile: true });
const TLS_FIELDS = fieldsOf<Exclude<NonNullable<ClusterOptions['tls']>, boolean>>({ certFile: true, keyFile: true, caFile: true });
const SERVER_FIELDS = fieldsOf<Extract<ServerRef, { module: unknown }>>({ module: true, export: true });
/** Every field of the object kinds of `data` (the others are arrays and iterables). */
const DATA_FIELDS = fieldsOf<Record<UnionKeys<RangeSource | FileSource>, unknown>>({ range: true, parquet: true, arrow: true });

/** Refuses unknown fields of an object-kind `data` (a range or files); arrays and iterables are rows. */
function rejectUnknownDataFields(data: unknown): void {
  if (!isObject(data) || Symbol.iterator in data || Symbol.asyncIterator in data) return;
  rejectUnknownFields(data, DATA_FIELDS, 'data');
  if (isObject(data.range)) rejectUnknownFields(data.range, RANGE_FIELDS, 'data.range');
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
    rejectUnknownFields(ref, SERVER_FIELDS, 'server');
    const exp = (ref as { export?: unknown }).export ?? 'default';
    if (typeof exp !== 'string' || exp === '') throw new InvalidOptionError('server.export', 'must be a non-empty string');
    return { module: toPath((ref as { module: unknown }).module, 'server.module'), export: exp };
  }
  throw new InvalidOptionError('server', 'is required: a module path, a file URL, or { module, export }');
}

/** Validates cluster options and applies defaults; errors name the option. */
export function resolveOptions<Row, Config>(o: ClusterOptions<Row, Config>): ResolvedOptions<Row, Config> {
  if (!isObject(o)) throw new InvalidOptionError('options', 'must be an object');
  rejectUnknownFields(o, CLUSTER_OPTIONS);
  rejectUnknownDataFields(o.data);
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
  const natsUrl = resolveNatsUrl(o.natsUrl);
  for (const k of ['natsServer', 'bindHost', 'natsListen', 'natsAdvertiseUrl'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) throw new InvalidOptionError(k, 'must be a non-empty string');
  }
  if (o.advertiseHost !== undefined && typeof o.advertiseHost !== 'function' && (typeof o.advertiseHost !== 'string' || o.advertiseHost === '')) {
    throw new InvalidOptionError('advertiseHost', 'must be a non-empty string or a function (partition, executorHost) => host');
  }
  resolveBusOptions(o);
  if (o.env !== undefined && (!isObject(o.env) || Object.values(o.env).some((v) => typeof v !== 'string'))) {
    throw new InvalidOptionError('env', 'must map names to string values');
  }
  if (o.log !== undefined && o.log !== false && typeof o.log !== 'function') throw new InvalidOptionError('log', 'must be a function or false');
  const logger = resolveLogger(o);
  if (o.inspect !== undefined && typeof o.inspect !== 'function')
    throw new InvalidOptionError('inspect', 'must be a function (event) => void, an xstate inspector');
  if (o.longs !== undefined && o.longs !== 'number' && o.longs !== 'bigint')
    throw new InvalidOptionError('longs', `must be "number" or "bigint", got ${JSON.stringify(o.longs)}`);
  if (o.collectiveTransport !== undefined && !['nats', 'direct', 'auto'].includes(o.collectiveTransport)) {
    throw new InvalidOptionError('collectiveTransport', `must be "nats", "direct" or "auto", got ${JSON.stringify(o.collectiveTransport)}`);
  }
  if (o.format !== undefined && o.format !== 'arrow' && o.format !== 'rows')
    throw new InvalidOptionError('format', `must be "arrow" or "rows", got ${JSON.stringify(o.format)}`);
  resolveSparkOptions(o);
  checkPartitionBy(o);
  const isolation = checkIsolation(o);
  return {
    serverModule: server.module,
    serverExport: server.export,
    data: o.data,
    partitions: positiveInt('partitions', o.partitions, 2, 1024),
    config: o.config,
    configJson,
    launcher: o.launcher,
    natsUrl,
    natsAuth: o.natsAuth,
    natsAccount: o.natsAccount && { ...o.natsAccount, credentialTtlMs: o.natsAccount.credentialTtlMs ?? 7 * 24 * 3600_000 },
    natsTls: o.natsTls,
    natsListen: o.natsListen,
    natsAdvertiseUrl: o.natsAdvertiseUrl,
    tls: o.tls ?? false,
    natsServer: o.natsServer,
    name,
    startTimeoutMs: positiveInt('startTimeoutMs', o.startTimeoutMs, 60_000),
    registerTimeoutMs: positiveInt('registerTimeoutMs', o.registerTimeoutMs, 60_000),
    sparkStartTimeoutMs: positiveInt('sparkStartTimeoutMs', o.sparkStartTimeoutMs, 180_000),
    submitTimeoutMs: positiveInt('submitTimeoutMs', o.submitTimeoutMs, 60_000),
    stopTimeoutMs: positiveInt('stopTimeoutMs', o.stopTimeoutMs, 30_000),
    requestTimeoutMs: positiveInt('requestTimeoutMs', o.requestTimeoutMs, 10_000),
    maxFailures: positiveInt('maxFailures', o.maxFailures, 4, 100),
    heartbeatMs: positiveInt('heartbeatMs', o.heartbeatMs, DEFAULT_HEARTBEAT_MS),
    hangTimeoutMs: positiveInt('hangTimeoutMs', o.hangTimeoutMs, 10_000),
    driverTimeoutMs: positiveInt('driverTimeoutMs', o.driverTimeoutMs, 45_000),
    reconnectWindowMs: positiveInt('reconnectWindowMs', o.reconnectWindowMs, 30_000),
    bindHost: o.bindHost,
    advertiseHost: o.advertiseHost,
    env: o.env ?? {},
    logger,
    logLevel: workerLevel(o.logLevel, o.logger),
    inspect: o.inspect,
    master: o.master,
    sparkConf: o.sparkConf ?? {},
    sparkHome: o.sparkHome,
    spark: o.spark,
    source: o.source,
    cacheResult: o.cacheResult ?? false,
    barrier: o.barrier ?? false,
    format: o.format,
    longs: o.longs ?? 'number',
    collectiveTransport: o.collectiveTransport ?? 'auto',
    http: checkHttpChoice('http', o.http) ?? (isolation === 'thread' ? 'node' : 'auto'),
    isolation,
    threadHeapMb: o.threadHeapMb === undefined ? undefined : positiveInt('threadHeapMb', o.threadHeapMb, 0),
    partitionBy: o.partitionBy,
    updates: o.updates === undefined ? undefined : checkUpdates(o.updates),
    events: checkEvents(o.events),
  };
}

/** Validates option `isolation` (and `threadHeapMb`, which only it uses). */
function checkIsolation(o: ClusterOptions<unknown, unknown>): Isolation {
  const isolation = o.isolation ?? 'process';
  if (isolation !== 'process' && isolation !== 'thread')
    throw new InvalidOptionError('isolation', `must be "process" or "thread", got ${JSON.stringify(isolation)}`);
  if (isolation === 'process') {
    if (o.threadHeapMb !== undefined) throw new InvalidOptionError('threadHeapMb', 'applies to isolation "thread" only');
    return isolation;
  }
  if (o.launcher !== undefined || o.master !== undefined || o.spark !== undefined) {
    throw new InvalidOptionError('isolation', '"thread" runs on the embedded launcher only (Spark and your own launchers run a process per partition)');
  }
  if (o.http === 'uws') {
    throw new InvalidOptionError(
      'http',
      '"uws" cannot serve partitions run as threads (isolation "thread"): a uWebSockets.js app open in a thread that dies aborts its whole host; use "node" or "auto"',
    );
  }
  return isolation;
}

/** Validates option `partitionBy`: a field name anywhere, a function on the embedded launcher only. */
function checkPartitionBy(o: ClusterOptions<unknown, unknown>): void {
  const by: unknown = o.partitionBy;
  if (by === undefined) return;
  if (typeof by !== 'function' && (typeof by !== 'string' || by === '')) {
    throw new InvalidOptionError('partitionBy', `must be a row field name or a function (row) => key, got ${JSON.stringify(by) ?? typeof by}`);
  }
  if (o.launcher !== undefined) throw new InvalidOptionError('partitionBy', 'applies to the embedded and Spark launchers, not to a launcher of your own');
  if (typeof by === 'function' && (o.master !== undefined || o.spark !== undefined)) {
    throw new InvalidOptionError('partitionBy', 'on Spark must name a column (a string): a function of the row cannot run in the Spark runner');
  }
}

/** The run's logger: the user's, else text lines to `log`, else nothing (`log: false`), else pino on stderr. */
function resolveLogger(o: ClusterOptions<unknown, unknown>): Logger {
  if (o.logLevel !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(o.logLevel))
    throw new InvalidOptionError('logLevel', `must be one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}, got ${JSON.stringify(o.logLevel)}`);
  if (o.logger !== undefined) {
    const l = o.logger as unknown as Record<string, unknown>;
    const missing = ['debug', 'info', 'warn', 'error', 'child'].filter((m) => typeof l?.[m] !== 'function');
    if (missing.length) throw new InvalidOptionError('logger', `must be a pino-compatible logger; it has no ${missing.join(', ')} method`);
    return o.logger;
  }
  if (o.log === false) return SILENT_LOGGER;
  if (o.log) return lineLogger(o.log);
  return createLogger(o.logLevel);
}

/** Option `natsUrl` as one comma-separated list of URLs, each checked to be non-empty. */
function resolveNatsUrl(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const parts = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
  if (!parts || parts.length === 0 || parts.some((p) => typeof p !== 'string')) {
    throw new InvalidOptionError('natsUrl', 'must be a URL, a comma-separated list of URLs or an array of them');
  }
  const urls = parts.flatMap((p) => p.split(',')).map((u) => u.trim());
  if (urls.some((u) => u === '' || /\s/.test(u))) throw new InvalidOptionError('natsUrl', 'has an empty entry or one with spaces');
  return urls.join(',');
}

/** Validates the bus options; errors name the option, never a secret's value. */
function resolveBusOptions(o: ClusterOptions<unknown, unknown>): void {
  const userRun = o.natsUrl !== undefined;
  for (const k of ['natsAuth', 'natsAccount', 'natsTls'] as const) {
    if (o[k] !== undefined && !userRun)
      throw new InvalidOptionError(k, 'applies to a NATS server you run (option natsUrl); the private server makes its own credentials');
  }
  for (const k of ['natsListen', 'natsAdvertiseUrl', 'tls', 'natsServer'] as const) {
    if (o[k] !== undefined && userRun) throw new InvalidOptionError(k, 'applies to the private nats-server, not to natsUrl');
  }
  if (o.natsAuth !== undefined) {
    const a: unknown = o.natsAuth;
    if (isObject(a)) rejectUnknownFields(a, NATS_AUTH_FIELDS, 'natsAuth');
    const kinds = [['token'], ['user', 'pass'], ['nkeySeed'], ['credsFile']];
    const kind = isObject(a) ? kinds.find((ks) => ks.every((k) => typeof a[k] === 'string' && a[k] !== '')) : undefined;
    if (!isObject(a) || !kind || Object.keys(a).length !== kind.length) {
      throw new InvalidOptionError('natsAuth', 'must be one of { token }, { user, pass }, { nkeySeed }, { credsFile } with non-empty strings');
    }
  }
  if (o.natsAccount !== undefined) {
    const a: unknown = o.natsAccount;
    if (o.natsAuth !== undefined) throw new InvalidOptionError('natsAccount', 'goes without natsAuth: the run logs in as the users it issues');
    if (isObject(a)) rejectUnknownFields(a, NATS_ACCOUNT_FIELDS, 'natsAccount');
    if (!isObject(a) || typeof a.account !== 'string' || typeof a.signingKeyFile !== 'string' || a.signingKeyFile === '') {
      throw new InvalidOptionError('natsAccount', 'must be { account, signingKeyFile, credentialTtlMs? }');
    }
    if (a.credentialTtlMs !== undefined) positiveInt('natsAccount.credentialTtlMs', a.credentialTtlMs, 0);
  }
  if (o.natsTls !== undefined) {
    const t: unknown = o.natsTls;
    if (isObject(t)) rejectUnknownFields(t, NATS_TLS_FIELDS, 'natsTls');
    if (!isObject(t) || Object.values(t).some((v) => typeof v !== 'string')) {
      throw new InvalidOptionError('natsTls', 'must be { caFile?, certFile?, keyFile? } with file paths');
    }
    if ((t.certFile === undefined) !== (t.keyFile === undefined)) throw new InvalidOptionError('natsTls', 'certFile and keyFile go together');
  }
  if (o.tls !== undefined && typeof o.tls !== 'boolean') {
    const t: unknown = o.tls;
    if (isObject(t)) rejectUnknownFields(t, TLS_FIELDS, 'tls');
    if (!isObject(t) || TLS_FIELDS.some((k) => typeof t[k] !== 'string' || t[k] === '')) {
      throw new InvalidOptionError('tls', 'must be true, false, or { certFile, keyFile, caFile } (PEM files)');
    }
  }
}

/** Validates the Spark options; errors name the option. */
function resolveSparkOptions(o: ClusterOptions<unknown, unknown>): void {
  for (const k of ['master', 'sparkHome'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k].trim() === '')) throw new InvalidOptionError(k, 'must be a non-empty string');
  }
  if (o.sparkConf !== undefined) {
    if (!isObject(o.sparkConf)) throw new InvalidOptionError('sparkConf', 'must map Spark configuration keys to string values');
    for (const [k, v] of Object.entries(o.sparkConf))
      if (typeof v !== 'string') throw new InvalidOptionError(`sparkConf.${k}`, `must be a string, got ${JSON.stringify(v)}`);
  }
  for (const k of ['cacheResult', 'barrier'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new InvalidOptionError(k, 'must be a boolean');
  }
  const spark = o.master !== undefined || o.spark !== undefined;
  if (o.master !== undefined && o.spark !== undefined)
    throw new InvalidOptionError('spark', 'give either master (a new Spark application) or spark (a running one), not both');
  if (o.spark !== undefined && (typeof o.spark !== 'object' || o.spark === null || typeof (o.spark as { request?: unknown }).request !== 'function')) {
    throw new InvalidOptionError('spark', 'must be a SparkApplication (from SparkApplication.start())');
  }
  if (o.launcher !== undefined && spark) throw new InvalidOptionError('launcher', 'cannot be combined with master or spark');
  if (!spark) {
    for (const k of ['source', 'sparkConf', 'sparkHome', 'cacheResult', 'barrier', 'format'] as const) {
      if (o[k] !== undefined) throw new InvalidOptionError(k, 'needs a Spark master (option master) or application (option spark)');
    }
  }
  if (o.spark !== undefined) {
    for (const k of ['sparkConf', 'sparkHome'] as const) {
      if (o[k] !== undefined)
        throw new InvalidOptionError(k, 'applies to an application started on master; the spark application was configured when it started');
    }
  }
  if (o.source !== undefined) {
    if (o.data !== undefined) throw new InvalidOptionError('source', 'give either data or source, not both');
    validateSparkSource(o.source);
  }
}

function checkEvents(events: unknown): boolean {
  if (events === undefined || events === false) return false;
  if (events !== true) throw new InvalidOptionError('events', `must be true or false, got ${JSON.stringify(events)}`);
  return true;
}

function checkUpdates(subject: unknown): string {
  return checkUpdatesSubject(subject);
}
