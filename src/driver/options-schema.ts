/**
 * The options of a {@link Cluster}, defined once as a TypeBox schema: their types, their check
 * (unknown fields with the nearest known name, then values) and their defaults all come from it.
 * What one option needs of another is checked by `resolveOptions` (options.ts).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Inspector } from './inspection.js';
import { LOG_LEVELS, type LogLevel, type Logger } from '../log/logger.js';
import type { EmbeddedSource } from './launch/data-source.js';
import type { Launcher } from './launch/launcher.js';
import type { PartitionBy } from './launch/key-placement.js';
import type { SparkApplication } from '../spark/spark-app.js';
import { HTTP_CHOICES, type HttpChoice } from '../transport/http-choice.js';
import { DEFAULT_HEARTBEAT_MS } from '../worker/worker-env.js';
import { isObject } from '../option-fields.js';
import { FunctionOf, Guarded, NonEmpty, OneOf, PositiveInt, STRICT, StringMap, Text, WithDefault, type Resolved } from '../option-schema.js';
import { RangeSchema } from './launch/data-source.js';
import { SparkSourceSchema } from '../spark/spark-source.js';

const MODULE = 'must be a module path, a file URL, or { module, export }';

const FilePath = (): ReturnType<typeof Type.String> => Type.String({ problem: 'must be a file path' });
const Bool = (): ReturnType<typeof Type.Boolean> => Type.Boolean({ problem: 'must be a boolean' });

const ModuleUrl = Guarded<URL>((v) => v instanceof URL, MODULE);
const LOGGER_METHODS = ['debug', 'info', 'warn', 'error', 'child'] as const;
const isLogger = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && LOGGER_METHODS.every((m) => typeof (v as Record<string, unknown>)[m] === 'function');
/** What a value given as `logger` lacks, by name. */
const loggerProblem = (v: unknown): string => {
  const base = `must be a pino-compatible logger (with methods ${LOGGER_METHODS.join(', ')})`;
  if (typeof v !== 'object' || v === null) return base;
  return `${base}: it has no ${LOGGER_METHODS.filter((m) => typeof (v as Record<string, unknown>)[m] !== 'function').join(', ')}`;
};
const isSparkApplication = (v: unknown): boolean => isObject(v) && typeof v.request === 'function';
/** Rows as an array, an iterable or an async iterable (never a string). */
const isRows = (v: unknown): boolean => typeof v === 'object' && v !== null && (Symbol.iterator in v || Symbol.asyncIterator in v);

/** Option `data`: rows, a range, or Parquet / Arrow files. */
const DataSchema = Type.Union(
  [
    Guarded<Iterable<unknown> | AsyncIterable<unknown>>(isRows, ''),
    RangeSchema,
    Type.Object({ parquet: NonEmpty({ problem: 'must be a non-empty path' }) }, STRICT),
    Type.Object({ arrow: NonEmpty({ problem: 'must be a non-empty path' }) }, STRICT),
  ],
  { problem: 'must be an array, an iterable, { range }, { parquet } or { arrow }' },
);

/** Option `natsAuth`; its values are secrets, never shown in an error. */
const NatsAuthSchema = Type.Union(
  [
    Type.Object({ /** The server's authentication token. */ token: NonEmpty({ secret: true }) }, STRICT),
    Type.Object({ /** User name. */ user: NonEmpty({ secret: true }), /** The user's password. */ pass: NonEmpty({ secret: true }) }, STRICT),
    Type.Object({ /** The user's nkey seed (the private key, as in an nkey seed file). */ nkeySeed: NonEmpty({ secret: true }) }, STRICT),
    Type.Object(
      { /** Path of a `.creds` file (JWT and nkey seed); the driver reads it and hands its text to workers. */ credsFile: NonEmpty({ secret: true }) },
      STRICT,
    ),
  ],
  { problem: 'must be one of { token }, { user, pass }, { nkeySeed }, { credsFile } with non-empty strings', secret: true },
);

/** Option `natsAccount`. */
export const NatsAccountSchema = Type.Object(
  {
    /** The account's public key (`A…`). */
    account: Type.String({ problem: 'must be the account public key' }),
    /** A file holding the account's signing key seed (`SA…`); read once at start, never logged or passed on. */
    signingKeyFile: NonEmpty(),
    /** How long the run's users are valid (their JWTs expire then, and the servers close their connections). Default: 7 days. */
    credentialTtlMs: WithDefault(PositiveInt(), 7 * 24 * 3600_000),
  },
  { ...STRICT, problem: 'must be { account, signingKeyFile, credentialTtlMs? }' },
);

/** Option `natsTls`. */
const NatsTlsSchema = Type.Object(
  {
    /** PEM file of the CA that signed the server's certificate; without it, the system's CAs. */
    caFile: Type.Optional(FilePath()),
    /** PEM file of the client certificate for mutual TLS; needs `keyFile`. */
    certFile: Type.Optional(FilePath()),
    /** PEM file of the client certificate's private key; needs `certFile`. */
    keyFile: Type.Optional(FilePath()),
  },
  { ...STRICT, problem: 'must be { caFile?, certFile?, keyFile? } with file paths' },
);

/** Option `tls`. */
const TlsSchema = Type.Union(
  [
    Type.Boolean(),
    Type.Object(
      {
        /** PEM file of the server's certificate. */
        certFile: NonEmpty(),
        /** PEM file of the server certificate's private key. */
        keyFile: NonEmpty(),
        /** PEM file of the CA that signed `certFile`; driver, workers and runner verify the server with it. */
        caFile: NonEmpty(),
      },
      STRICT,
    ),
  ],
  { problem: 'must be true, false, or { certFile, keyFile, caFile } (PEM files)' },
);

/** The schema of {@link ClusterOptions}: each option, its check and its default. */
export const ClusterOptionsSchema = Type.Object(
  {
    /**
     * The module that exports the partition server (an instance, a class, or a factory taking the
     * config), as a path, a `file:` URL, or `{ module, export }`. Default export: `default`.
     */
    server: Type.Union(
      [NonEmpty(), ModuleUrl, Type.Object({ module: Type.Union([NonEmpty(), ModuleUrl], { problem: MODULE }), export: Type.Optional(NonEmpty()) }, STRICT)],
      { problem: MODULE },
    ),
    /** Rows to serve (embedded launcher): an array, an iterable, or `{ range: { start, end, step } }`. */
    data: Type.Optional(DataSchema),
    /** Number of partitions (and so of partition servers). Default: 2. */
    partitions: WithDefault(PositiveInt(1024), 2),
    /** JSON-serializable object handed to every partition server as `ctx.config`. */
    config: Type.Optional(Type.Unknown()),
    /** A launcher of your own; default: the embedded launcher. */
    launcher: Type.Optional(Guarded<Launcher>(isObject, 'must be a Launcher (an object with a launch method)')),
    /**
     * A running NATS server or cluster to use: one URL, several comma-separated, or an array. Every
     * process of the run (driver, workers, Spark runner) gets every URL and fails over between them.
     * Give `natsAuth`/`natsTls` to log in, or `natsAccount` to have the run's own identities there.
     * Default: a private nats-server started for the run, which admits only the run's own nkey
     * users, each limited to its role's subjects.
     */
    natsUrl: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], { problem: 'must be a URL, a comma-separated list of URLs or an array of them' }),
    ),
    /** Credentials for `natsUrl`, used by the driver, the workers and the Spark runner alike. */
    natsAuth: Type.Optional(NatsAuthSchema),
    /**
     * The run's own identities on a NATS cluster you run with decentralized auth (`natsUrl`): the
     * driver issues one user per identity (driver, each partition, runner, client), each limited to
     * its role's subjects as on the private server, signed by this account's signing key. Make the
     * account with `sps credentials --nats-config DIR`. Not with `natsAuth`.
     */
    natsAccount: Type.Optional(NatsAccountSchema),
    /** TLS for `natsUrl`: the CA to verify the server with, and a client certificate for mutual TLS. */
    natsTls: Type.Optional(NatsTlsSchema),
    /**
     * Address (`host` or `host:port`) the private nats-server listens on. Default: 127.0.0.1, or for
     * a Spark master on other hosts the driver's address as Spark uses it (`spark.driver.bindAddress`,
     * `spark.driver.host`, `SPARK_LOCAL_IP`, else this host's first non-loopback address).
     */
    natsListen: Type.Optional(NonEmpty()),
    /** URL workers are given for the private nats-server. Default: from `natsListen` (or `spark.driver.host`). */
    natsAdvertiseUrl: Type.Optional(NonEmpty()),
    /**
     * Serve the private nats-server over TLS only: `true` makes a CA and certificate for the run,
     * or give your own PEM files. Driver, workers and runner verify the server against the CA.
     */
    tls: WithDefault(TlsSchema, false),
    /** Path of the nats-server binary; default: `$SPS_NATS_SERVER`, then `.venv`, then the `npx sps setup` cache, then `PATH`. */
    natsServer: Type.Optional(NonEmpty()),
    /** Prefix of the cluster id (letters, digits, `_`, `-`). Default: `sps`. */
    name: WithDefault(Type.String({ pattern: '^[A-Za-z0-9_-]+$', problem: 'may only hold letters, digits, "_" and "-"' }), 'sps'),
    /**
     * Timeouts of `start()`, one per stage, each named in its error. Once the partitions are launched
     * (after the Spark application and the submit), `registerTimeoutMs` bounds how long until every
     * partition's worker registered, and `startTimeoutMs` how long until every partition serves
     * (`StartTimeoutError`, `.stage` `'register'` / `'serve'`). Defaults: 60000 / 60000 ms.
     */
    startTimeoutMs: WithDefault(PositiveInt(), 60_000),
    /** How long, in ms, until every launched partition's worker registered (stage `'register'`). Default: 60000 ms. */
    registerTimeoutMs: WithDefault(PositiveInt(), 60_000),
    /** How long a Spark application started for the run (option `master`) may take to be ready. Default: 180000 ms. */
    sparkStartTimeoutMs: WithDefault(PositiveInt(), 180_000),
    /** How long the Spark runner may take to accept the run's job. Default: 60000 ms. */
    submitTimeoutMs: WithDefault(PositiveInt(), 60_000),
    /** How long `stop()` waits for every partition's result. Default: 30000 ms. */
    stopTimeoutMs: WithDefault(PositiveInt(), 30_000),
    /** Default timeout of `request()` and `requestAll()`. Default: 10000 ms. */
    requestTimeoutMs: WithDefault(PositiveInt(), 10_000),
    /**
     * Liveness: the driver sends a heartbeat every `heartbeatMs` (default 1000), and each worker
     * ticks to its launcher (or Spark task) as often. A worker whose event loop is silent for
     * `hangTimeoutMs` (default 10000) is declared hung, killed and retried like a crash; workers leave
     * by themselves when the driver is silent for `driverTimeoutMs` (default 45000, longer than the
     * reconnect window so a restarted NATS server is waited out).
     */
    heartbeatMs: WithDefault(PositiveInt(), DEFAULT_HEARTBEAT_MS),
    /** Silence, in ms, after which a worker is declared hung, killed and retried. Default: 10000 ms. */
    hangTimeoutMs: WithDefault(PositiveInt(), 10_000),
    /** Driver silence, in ms, after which a worker leaves by itself. Default: 45000 ms. */
    driverTimeoutMs: WithDefault(PositiveInt(), 45_000),
    /**
     * How long the driver, workers and runner keep reconnecting when the NATS server goes away
     * (a restart of a server you run, `natsUrl`). Default: 30000 ms. Losing the private server
     * fails the run at once instead (ComponentLostError).
     */
    reconnectWindowMs: WithDefault(PositiveInt(), 30_000),
    /** Failed attempts of one partition before giving up, as Spark's `spark.task.maxFailures`. Default: 4. */
    maxFailures: WithDefault(PositiveInt(100), 4),
    /**
     * Address the partition servers bind HTTP to. Default: 127.0.0.1 on this machine; with a Spark
     * master on other hosts, each executor's own address (`SPARK_LOCAL_IP`, else the address that
     * routes to the driver).
     */
    bindHost: Type.Optional(NonEmpty()),
    /**
     * Host the partition servers register (what clients connect to): a host, or a function of the
     * partition and the address its executor registered. Default: the bound address.
     */
    advertiseHost: Type.Optional(
      Type.Union([NonEmpty(), FunctionOf<(partition: number, executorHost: string) => string>('')], {
        problem: 'must be a non-empty string or a function (partition, executorHost) => host',
      }),
    ),
    /** Extra environment variables for the worker processes. */
    env: WithDefault(StringMap('must map names to string values'), {}),
    /**
     * Where the run's log goes as text lines (`[sps <cluster> p<partition>/a<attempt>] message`), or
     * `false` to drop it. Without it (and without `logger`), the run logs JSON records on stderr.
     */
    log: Type.Optional(Type.Union([Type.Literal(false), FunctionOf<(line: string) => void>('')], { problem: 'must be a function or false' })),
    /**
     * A pino-compatible logger (`debug`, `info`, `warn`, `error`, `child`) for the driver's and the
     * workers' records: the cluster logs on `logger.child({ cluster })`, and each worker's records
     * on `child({ cluster, partition, attempt })`. Default: pino, JSON lines on stderr. Takes
     * precedence over `log`.
     */
    logger: Type.Optional(Guarded<Logger>(isLogger, loggerProblem)),
    /** The level the run logs at: `debug`, `info` (default), `warn`, `error` or `silent` (the workers too). */
    logLevel: Type.Optional(OneOf(LOG_LEVELS)),
    /**
     * An xstate inspector (`(event: InspectionEvent) => void`) that sees the whole system: the
     * driver's supervisor (and Spark job) actors, and every partition's server actor, whose
     * transitions the workers then report over the bus (only when this is set). See the README's
     * "Inspection".
     */
    inspect: Type.Optional(FunctionOf<Inspector>('must be a function (event) => void, an xstate inspector')),
    /**
     * Spark master (`local[N]`, `local[N,F]`, `spark://host:port`, or anything spark-submit
     * accepts): runs the partitions as the tasks of a Spark job in an application started for the
     * run. Needs Java 17+ and pyspark (`npx sps setup --spark`, or `npm run setup` in a clone). `local[N]` becomes `local[N,maxFailures]`.
     */
    master: Type.Optional(Text()),
    /** Spark configuration for the application started on `master`, e.g. `{ 'spark.driver.memory': '512m' }`. */
    sparkConf: WithDefault(StringMap('must map Spark configuration keys to string values'), {}),
    /** Spark home for `master` (a directory with `bin/spark-submit`). Default: `$SPARK_HOME`, then pyspark in `.venv` or the `npx sps setup --spark` cache. */
    sparkHome: Type.Optional(Text()),
    /** A running {@link SparkApplication} to run on (shared between runs and clusters); instead of `master`. */
    spark: Type.Optional(Guarded<SparkApplication>(isSparkApplication, 'must be a SparkApplication (from SparkApplication.start())')),
    /**
     * What a Spark run serves: a range, in-memory rows, text files, parquet / json / csv on a path,
     * a SQL query or a table, repartitioned to `partitions`. `data` works with Spark too.
     */
    source: Type.Optional(SparkSourceSchema),
    /** Keep the result records persisted in the Spark application after `stop()` (see `Cluster.resultDataset`). Default: false. */
    cacheResult: WithDefault(Bool(), false),
    /**
     * Run the Spark job in barrier mode: all partitions start together and, when one fails, all
     * restart together (as a new stage attempt). Default: false.
     */
    barrier: WithDefault(Bool(), false),
    /**
     * How the rows of a Spark DataFrame source (sql, table, parquet, json, csv) reach the partition
     * servers: `arrow` (Arrow record batches, `rows.arrow()`; an error when a column's type has no
     * Arrow form) or `rows` (JSON rows). Default: Arrow, falling back to JSON rows by itself (and
     * saying so in the log) when a column's type has no Arrow form.
     */
    format: Type.Optional(OneOf(['arrow', 'rows'])),
    /**
     * How 64-bit integer columns of Arrow rows become row values: `number` (default; a value beyond
     * 2^53 fails the partition with `SPS_ROWS_LONG_OVERFLOW`) or `bigint`. `rows.arrow()` always
     * has them as BigInt64Array.
     */
    longs: WithDefault(OneOf(['number', 'bigint']), 'number'),
    /**
     * How collectives send their data unless a call says otherwise (`transport` of a call):
     * `'auto'` (default) over direct, authenticated sockets between partitions (in groups of more
     * than 8, only values of 64 KB and more; on a TLS bus the sockets speak TLS, both ends pinned);
     * `'nats'` always through nats-server; `'direct'` always over the sockets.
     */
    collectiveTransport: WithDefault(OneOf(['nats', 'direct', 'auto']), 'auto'),
    /**
     * The partitions' HTTP server (and the dashboard's): `'uws'` native uWebSockets.js (a partition
     * fails where no binary for its Node version and glibc loads), `'node'` the `node:http` server
     * with `ws`, or `'auto'` (default): uWebSockets.js where it loads, else `node:http`, with one
     * warning saying why. A server's own `httpServer` factory takes precedence.
     */
    http: Type.Optional(OneOf(HTTP_CHOICES)),
    /**
     * How partitions are isolated (embedded launcher): `'process'` (default) runs each partition
     * attempt as its own Node process; `'thread'` runs them as worker threads of one partition host
     * process, which starts faster and costs less memory per partition. A thread that throws, exits
     * or hangs fails its own attempt only; the host's death fails every attempt it ran. Threads
     * serve HTTP with `node:http` (`http: 'auto'` means `'node'` there; `'uws'` is refused: a
     * uWebSockets.js app open in a dying thread aborts the whole host). See docs/options.md.
     */
    isolation: WithDefault(OneOf(['process', 'thread']), 'process'),
    /** With `isolation: 'thread'`, each thread's heap limit (old generation) in MB; one that exceeds it fails alone. Default: Node's. */
    threadHeapMb: Type.Optional(PositiveInt()),
    /**
     * Keep one spare worker process (embedded launcher, `isolation: 'process'`): started once every
     * partition serves, it loads the library and the server module, then waits holding no partition
     * and no secret. When a partition loses its attempt, the spare becomes the next attempt and only
     * then receives its partition and secrets (on the same private pipe a started worker reads them
     * from), so the new attempt skips Node's start and the module loads. Default `false`: a run that
     * never loses a partition would pay the spare's start and memory for nothing. See docs/faults.md.
     */
    spareWorker: WithDefault(Bool(), false),
    /**
     * Places each row on the partition that owns its key (docs/keys.md) instead of by position: a
     * row field (a DataFrame column on Spark) whose value is the key, or, with the embedded launcher
     * only, a function of the row returning the key. Keys are strings or integers; `cluster.partitionOf(key)`
     * then names the partition holding a key's rows, and `requestByKey` reaches it.
     */
    partitionBy: Type.Optional(
      Type.Union([NonEmpty(), FunctionOf<(row: never) => unknown>('')], { problem: 'must be a row field name or a function (row) => key' }),
    ),
    /**
     * Live updates (docs/updates.md): a subject with one `*` for the key, e.g. `"orders.*"`. The run
     * keeps a JetStream stream of it (on the private bus, which then runs JetStream); an update
     * published on `orders.<key>` reaches the server of the partition owning `<key>` (`onUpdate`),
     * in order, and a retried attempt replays its partition's updates since the run started.
     * `cluster.credentials('publisher')` may publish them and nothing else.
     */
    updates: Type.Optional(Type.String({ problem: 'must be a subject with one "*" for the key' })),
    /**
     * Events (docs/updates.md#events): partitions publish to a JetStream stream of the run with
     * `ctx.publish(subject, data)`, acknowledged once stored, and clients read it with the
     * client credentials. Default false.
     */
    events: WithDefault(Type.Boolean({ problem: 'must be true or false' }), false),
  },
  STRICT,
);

type SchemaOptions = Static<typeof ClusterOptionsSchema>;
/** The options whose type depends on the rows and the config of a run. */
type Generic = 'data' | 'config' | 'partitionBy';

/** Options of a {@link Cluster}, each described in docs/options.md. Validated once, by its constructor, against the options schema. */
export type ClusterOptions<Row = unknown, Config = unknown> = Omit<SchemaOptions, Generic> & {
  /** Rows to serve (embedded launcher): an array, an iterable, or `{ range: { start, end, step } }`. */
  data?: EmbeddedSource<Row>;
  /** JSON-serializable object handed to every partition server as `ctx.config`. */
  config?: Config;
  /**
   * Places each row on the partition that owns its key (docs/keys.md) instead of by position: a
   * row field (a DataFrame column on Spark) whose value is the key, or, with the embedded launcher
   * only, a function of the row returning the key.
   */
  partitionBy?: PartitionBy<Row>;
};

/** Where the worker finds the partition server: a module path or URL, and which export. */
export type ServerRef = SchemaOptions['server'];
/** The account a run issues its users in, on a NATS cluster you run (option `natsAccount`). */
export type NatsAccountOption = Static<typeof NatsAccountSchema>;
/** Credentials for a user-run NATS server (option `natsAuth`). */
export type NatsAuthOption = Static<typeof NatsAuthSchema>;

/** Options after validation, with defaults applied. */
export type ResolvedOptions<Row, Config> = Omit<
  Resolved<typeof ClusterOptionsSchema>,
  Generic | 'server' | 'natsUrl' | 'natsAccount' | 'log' | 'logger' | 'logLevel' | 'http'
> & {
  /** Module of option `server`, as workers import it. */
  serverModule: string;
  /** Export name of option `server` within its module. */
  serverExport: string;
  /** Option `data`; see {@link ClusterOptions}. */
  data?: EmbeddedSource<Row>;
  /** Option `config`; see {@link ClusterOptions}. */
  config?: Config;
  /** Option `config` serialized as JSON (`''` when absent). */
  configJson: string;
  /** Option `partitionBy`; see {@link ClusterOptions}. */
  partitionBy?: PartitionBy<Row>;
  /** Option `natsUrl` as resolved (every URL, comma-separated); see {@link ClusterOptions}. */
  natsUrl?: string;
  /** Option `natsAccount` with its default; see {@link ClusterOptions}. */
  natsAccount?: Resolved<typeof NatsAccountSchema>;
  /** Where the run's records go (the cluster binds `cluster`, launchers `partition` and `attempt`). */
  logger: Logger;
  /** The level the workers log at. */
  logLevel: LogLevel;
  /** Option `http` as resolved (default `'auto'`; `'node'` for `isolation: 'thread'`); see {@link ClusterOptions}. */
  http: HttpChoice;
};
