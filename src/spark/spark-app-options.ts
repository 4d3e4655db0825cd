/**
 * The options of a {@link SparkApplication} (`start`) and of one hosted by another process
 * (`attach`), each one TypeBox schema: their types, their check and their defaults come from it.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Logger } from '../log/logger.js';
import type { BusAuth, BusTls } from '../security/bus-access.js';
import { FunctionOf, Guarded, NonEmpty, PositiveInt, STRICT, StringMap, Text, WithDefault } from '../option-schema.js';
import type { HostedRunner } from './spark-app.js';

const CONF = 'must map Spark configuration keys to string values';
/** A PEM text or a secret: never shown in an error. */
const Secret = (): ReturnType<typeof NonEmpty> => NonEmpty({ secret: true });

/** Credentials for the control bus (driver and runner alike); its values are secrets. */
const BusAuthSchema = Type.Union(
  [
    Type.Object({ nkeySeed: Secret() }, STRICT),
    Type.Object({ token: Secret() }, STRICT),
    Type.Object({ user: Secret(), pass: Secret() }, STRICT),
    Type.Object({ creds: Secret() }, STRICT),
  ],
  { problem: 'must be an object: { nkeySeed }, { token }, { user, pass } or { creds } with non-empty strings', secret: true },
);

/** TLS for the control bus, as PEM contents. */
const BusTlsSchema = Type.Object(
  { ca: Type.Optional(Secret()), cert: Type.Optional(Secret()), key: Type.Optional(Secret()) },
  { ...STRICT, problem: 'must be an object { ca?, cert?, key? } of PEM contents' },
);

/** The schema of {@link SparkApplicationOptions}: each option, its check and its default. */
export const SparkApplicationOptionsSchema = Type.Object(
  {
    /** Spark master: `local[N]`, `local[N,F]`, `spark://host:port`, or anything spark-submit accepts. */
    master: Type.String({ pattern: '\\S', problem: 'must be a non-empty Spark master URL, e.g. "local[2]"' }),
    /** Spark configuration (`--conf key=value`), e.g. `{ 'spark.driver.memory': '512m' }`. */
    conf: WithDefault(StringMap(CONF), {}),
    /** Spark home (a directory with `bin/spark-submit`). Default: `$SPARK_HOME`, then pyspark in `.venv`. */
    sparkHome: Type.Optional(Text()),
    /** Python for the runner and the executors. Default: `$PYSPARK_PYTHON`, then `.venv/bin/python`. */
    python: Type.Optional(Text()),
    /** Application name shown by Spark. Default: `spark-partition-server`. */
    appName: WithDefault(Text(), 'spark-partition-server'),
    /**
     * NATS server for the application's control subjects. Default: a private nats-server on
     * loopback whose only users are the driver and the runner.
     */
    natsUrl: Type.Optional(NonEmpty()),
    /** Credentials for `natsUrl` (driver and runner alike). */
    natsAuth: Type.Optional(Type.Unsafe<BusAuth>(BusAuthSchema)),
    /** TLS for `natsUrl` (PEM contents). */
    natsTls: Type.Optional(Type.Unsafe<BusTls>(BusTlsSchema)),
    /** Path of the nats-server binary (when a private one is started). */
    natsServer: Type.Optional(NonEmpty()),
    /**
     * Task attempts before Spark gives up on a partition (`spark.task.maxFailures`; for a
     * `local[N]` master it becomes `local[N,maxFailures]`, as local mode otherwise never retries).
     * Default: 4.
     */
    maxFailures: WithDefault(PositiveInt(100), 4),
    /** How long to wait for the application to start. Default: 180000 ms. */
    startTimeoutMs: WithDefault(PositiveInt(), 180_000),
    /** How long a cluster master may take to offer enough task slots for a run. Default: 30000 ms. */
    slotWaitMs: WithDefault(PositiveInt(), 30_000),
    /** Where spark-submit's output goes as text lines, or `false` to drop it. Default: JSON records on stderr (see `logger`). */
    log: Type.Optional(Type.Union([Type.Literal(false), FunctionOf<(line: string) => void>('')], { problem: 'must be a function or false' })),
    /**
     * A pino-compatible logger for spark-submit's output (bound to `app`): the workers' records of
     * every run on this application, under their `cluster`, `partition` and `attempt`, and Spark's
     * own lines (`component: 'spark'`). Takes precedence over `log`.
     */
    logger: Type.Optional(
      Guarded<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function', 'must be a pino-compatible logger'),
    ),
  },
  STRICT,
);

/** Options of a {@link SparkApplication}. */
export type SparkApplicationOptions = Static<typeof SparkApplicationOptionsSchema>;

/** The schema of {@link HostedRunnerOptions}. */
export const HostedRunnerOptionsSchema = Type.Object(
  {
    /** Hands the hosting process what its runner needs; called once, before waiting for `ready`. */
    host: FunctionOf<(runner: HostedRunner) => void>('must be a function (runner) => void'),
    /** Pid of the hosting process. */
    pid: PositiveInt(),
    /** Task attempts per partition before Spark gives up, as the hosting session retries. */
    maxFailures: PositiveInt(),
    /** The hosting session's Spark configuration (where executors reach the driver, for the bus). */
    conf: WithDefault(StringMap(CONF), {}),
    /** How long to wait for the runner's `ready`. Default: 60000 ms. */
    readyTimeoutMs: WithDefault(PositiveInt(), 60_000),
    /**
     * This host's address as executors on other hosts reach it, where the session's master does
     * not tell (a remote Spark Connect server running a local master): runs' buses listen there.
     */
    busHost: Type.Optional(NonEmpty()),
    /** Path of the nats-server binary for the private control bus. */
    natsServer: Type.Optional(NonEmpty()),
    /** Aborted when the hosting process learns its runner cannot start; its reason is what attach throws. */
    signal: Type.Optional(Guarded<AbortSignal>((v) => v instanceof AbortSignal, 'must be an AbortSignal')),
  },
  STRICT,
);

/** Options of {@link SparkApplication.attach}. */
export type HostedRunnerOptions = Static<typeof HostedRunnerOptionsSchema>;
