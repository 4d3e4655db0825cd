import { ERROR_CODES, type ErrorCode } from './error-codes.js';
import { SETUP_COMMAND } from './process/user-cache.js';

export { ERROR_CODES, type ErrorCode } from './error-codes.js';

/**
 * Every error this library throws is a {@link SparkPartitionServerError} with a stable `code`,
 * so callers can branch on `err.code` instead of parsing messages.
 */
export class SparkPartitionServerError extends Error {
  /**
   * Stable, machine-readable error code: an {@link ErrorCode} of the library, or, for a
   * {@link RequestError} or {@link WorkerError}, the code the application's own error carried.
   */
  readonly code: string;
  /**
   * `false` when a retry cannot fix this error (see {@link NOT_RETRYABLE}): a partition failing
   * with it fails at once instead of being relaunched.
   */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryable = ERROR_CODES[code]?.retryable !== false;
  }
}

/** An option given to {@link Cluster} (or an environment variable of a worker) is invalid. */
export class InvalidOptionError extends SparkPartitionServerError {
  /** The option (or environment variable) that was wrong. */
  readonly option: string;
  constructor(option: string, problem: string) {
    super('SPS_INVALID_OPTION', `Invalid option "${option}": ${problem}`);
    this.option = option;
  }
}

/**
 * A required executable (nats-server, java, spark-submit) could not be found or started. The
 * message always names `npx sps setup`, which installs what the library runs.
 */
export class DependencyMissingError extends SparkPartitionServerError {
  constructor(what: string, howToFix: string) {
    const setup = howToFix.includes(SETUP_COMMAND)
      ? ''
      : ` "${SETUP_COMMAND}" installs the pinned nats-server, "${SETUP_COMMAND} --spark" pyspark as well, where this library finds them.`;
    super('SPS_DEPENDENCY_MISSING', `${what} was not found. ${howToFix}${setup}`);
  }
}

/** Not every partition was serving before `startTimeoutMs` ran out. */
export class StartTimeoutError extends SparkPartitionServerError {
  /** Partitions that were not registered (stage `register`) or not serving (stage `serve`) when the timeout fired. */
  readonly missing: number[];
  /** Which stage ran out of time: every worker registered (`registerTimeoutMs`), or every partition serving (`startTimeoutMs`). */
  readonly stage: 'register' | 'serve';
  constructor(timeoutMs: number, missing: number[], details: string, stage: 'register' | 'serve' = 'serve') {
    const [option, what] = stage === 'register' ? ['registerTimeoutMs', 'not registered'] : ['startTimeoutMs', 'not serving'];
    super(
      'SPS_START_TIMEOUT',
      `Cluster did not start within ${timeoutMs} ms (${option}): partition(s) ${missing.join(', ')} ${what}${details ? ` (${details})` : ''}.`,
    );
    this.missing = missing;
    this.stage = stage;
  }
}

/** Partitions did not finish and return their results before `stopTimeoutMs` ran out. */
export class StopTimeoutError extends SparkPartitionServerError {
  /** Partitions whose results were still missing. */
  readonly missing: number[];
  constructor(timeoutMs: number, missing: number[]) {
    super(
      'SPS_STOP_TIMEOUT',
      `Cluster did not stop within ${timeoutMs} ms: partition(s) ${missing.join(', ')} did not return results; their processes were killed.`,
    );
    this.missing = missing;
  }
}

/** A partition failed more often than `maxFailures` allows; the cluster cannot serve it. */
export class PartitionFailedError extends SparkPartitionServerError {
  /** The partition index. */
  readonly partition: number;
  /** How many attempts failed. */
  readonly failures: number;
  /** Every partition lost in the run, `partition` first (others were lost after it). */
  readonly partitions: number[];
  /**
   * `alsoLost`: partitions lost after `partition`, and what each went through; `cause`: the
   * worker's own error ({@link WorkerError}); `retryable: false`: its failure was not retried, as
   * no retry could fix it.
   */
  constructor(
    partition: number,
    failures: number,
    lastError: string,
    options?: { alsoLost?: { partitions: number[]; detail: string }; cause?: unknown; retryable?: boolean },
  ) {
    const alsoLost = options?.alsoLost;
    super(
      'SPS_PARTITION_FAILED',
      (options?.retryable === false
        ? `Partition ${partition} failed with an error a retry cannot fix, so it was not retried. Error: ${lastError}`
        : `Partition ${partition} failed ${failures} time(s), giving up. Last error: ${lastError}`) +
        (alsoLost?.partitions.length ? `. Also lost: ${alsoLost.detail}` : ''),
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.partition = partition;
    this.failures = failures;
    this.partitions = [partition, ...(alsoLost?.partitions ?? [])];
    // Starting again would fail the same way.
    if (options?.retryable === false) Object.defineProperty(this, 'retryable', { value: false });
  }
}

/**
 * A component the cluster cannot run without went away: the run's nats-server, the driver's
 * connection to the bus, or the Spark application (spark-submit). The cluster fails at once.
 */
export class ComponentLostError extends SparkPartitionServerError {
  /** Which component: `nats-server`, `bus connection`, `spark-submit`. */
  readonly component: string;
  /** Partitions whose results were still owed (they went down with it). */
  readonly partitions: number[];
  constructor(component: string, detail: string, partitions: number[]) {
    super('SPS_COMPONENT_LOST', `Lost ${component}: ${detail}${partitions.length ? ` (partition(s) ${partitions.join(', ')} went down with it)` : ''}`);
    this.component = component;
    this.partitions = partitions;
  }
}

/** A request to a partition endpoint failed: no such partition or endpoint, a timeout, or the handler threw. */
export class RequestError extends SparkPartitionServerError {
  /** The partition that was asked. */
  readonly partition: number;
  /** The endpoint that was asked. */
  readonly endpoint: string;
  constructor(code: string, partition: number, endpoint: string, message: string) {
    // The handler's own code, when it threw one: an application's codes are not the library's.
    super(code as ErrorCode, `Partition ${partition}, endpoint "${endpoint}": ${message}`);
    this.partition = partition;
    this.endpoint = endpoint;
  }
}

/** The cluster was used in a state that does not allow it (e.g. `request()` before `start()`). */
export class ClusterStateError extends SparkPartitionServerError {
  constructor(message: string) {
    super('SPS_CLUSTER_STATE', message);
  }
}

/**
 * A call was cancelled by its `AbortSignal` and did not complete as it would have (e.g. `stop()`
 * tore everything down at once instead of collecting every result). `cause` is the signal's reason.
 */
export class AbortedError extends SparkPartitionServerError {
  /** What was cut short, e.g. `stop`. */
  readonly operation: string;
  constructor(operation: string, message: string, reason: unknown) {
    super('SPS_ABORTED', `${operation} aborted: ${message}`, { cause: reason });
    this.operation = operation;
  }
}

/** A message on the cluster's subjects could not be decoded or had the wrong shape. */
export class MalformedMessageError extends SparkPartitionServerError {
  constructor(subject: string, problem: string) {
    super('SPS_MALFORMED_MESSAGE', `Malformed message on "${subject}": ${problem}`);
  }
}

/** The user's partition server module could not be loaded or did not export a partition server. */
export class ServerModuleError extends SparkPartitionServerError {
  constructor(module: string, problem: string) {
    super('SPS_SERVER_MODULE', `Partition server module "${module}": ${problem}`);
  }
}

/**
 * Spark could not do what a cluster run needed: the application did not start, the job could not
 * be submitted (e.g. its source could not be read), or a result dataset operation failed. `code`
 * tells which: `SPS_SPARK_START`, `SPS_SPARK_JOB`, `SPS_SPARK_DATASET`, `SPS_SPARK_RUNNER`, or the
 * code of the runner's refusal (`SPS_MALFORMED_MESSAGE` for an order that does not match the protocol).
 */
export class SparkError extends SparkPartitionServerError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** The Spark application cannot run every partition's task at once, which a cluster run needs. */
export class SparkSlotsError extends SparkPartitionServerError {
  /** Tasks the application can run at once. */
  readonly available: number;
  /** Tasks the cluster run needs at once (its partitions). */
  readonly needed: number;
  constructor(available: number, needed: number, message: string) {
    super('SPS_SPARK_SLOTS', message);
    this.available = available;
    this.needed = needed;
  }
}

/**
 * A collective (`ctx.barrier()`, `ctx.allReduce()`, …) was used wrongly: a bad argument (`SPS_COLLECTIVE_ARGUMENT`), partitions
 * that called different collectives or passed values of different shapes at the same step
 * (`SPS_COLLECTIVE_MISMATCH`), or a call before the partition registered (`SPS_COLLECTIVE_STATE`).
 */
export class CollectiveError extends SparkPartitionServerError {
  /** The collective that failed (`barrier`, `allReduce`, …). */
  readonly operation: string;
  constructor(
    code: 'SPS_COLLECTIVE_ARGUMENT' | 'SPS_COLLECTIVE_MISMATCH' | 'SPS_COLLECTIVE_STATE' | 'SPS_COLLECTIVE_DIRECT',
    operation: string,
    message: string,
  ) {
    super(code, `${operation}: ${message}`);
    this.operation = operation;
  }
}

/**
 * A collective was aborted because a participant's attempt was replaced or failed (the cluster's
 * generation rose), or this partition's own attempt was replaced. Nothing from the old attempt is
 * ever mixed into a result: retry the computation once every partition serves again.
 */
export class CollectiveAbortedError extends SparkPartitionServerError {
  /** The collective that was aborted. */
  readonly operation: string;
  /** The partitions whose attempt was replaced or failed. */
  readonly partitions: number[];
  /** The generation the call ran in. */
  readonly generation: number;
  constructor(operation: string, partitions: number[], generation: number, why: string) {
    super('SPS_COLLECTIVE_ABORTED', `${operation} aborted (generation ${generation}): ${why}`);
    this.operation = operation;
    this.partitions = partitions;
    this.generation = generation;
  }
}

/** A collective did not complete in time; `missing` names the partitions that never arrived. */
export class CollectiveTimeoutError extends SparkPartitionServerError {
  /** The collective that timed out. */
  readonly operation: string;
  /** Partitions this one was still waiting for. */
  readonly missing: number[];
  constructor(operation: string, timeoutMs: number, missing: number[], detail: string) {
    super('SPS_COLLECTIVE_TIMEOUT', `${operation} did not complete within ${timeoutMs} ms: ${detail}`);
    this.operation = operation;
    this.missing = missing;
  }
}

/**
 * Codes of errors a retry cannot fix: the same program, options and platform fail the same way
 * every time (a native binary that does not load, a server module that does not import or exports
 * no partition server, an invalid option or endpoint name). A partition whose worker fails with one
 * fails at once. Any other error, also a user's own, is retried unless it has `retryable: false`.
 */
export const NOT_RETRYABLE: ReadonlySet<string> = new Set(
  Object.entries(ERROR_CODES)
    .filter(([, c]) => !c.retryable)
    .map(([code]) => code),
);

/**
 * A partition worker's own error, rebuilt on the driver from its report: the `code` the worker's
 * error had (the user's own code, when it had one), its message, and its stack (source-mapped for a
 * compiled TypeScript server). It is the `cause` of a {@link PartitionFailedError}.
 */
export class WorkerError extends SparkPartitionServerError {
  /** The partition whose worker failed. */
  readonly partition: number;
  constructor(partition: number, report: { code: string; message: string; stack?: string; retryable?: boolean }) {
    // The worker's own code: the library's, or one of the application's errors.
    super(report.code as ErrorCode, report.message);
    this.partition = partition;
    // The worker's stack, not this constructor's: that is where it happened.
    this.stack = report.stack ?? `${this.name}: ${report.message}`;
    if (report.retryable === false) Object.defineProperty(this, 'retryable', { value: false });
  }
}
