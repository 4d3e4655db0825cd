import type { SparkEvent } from '../cluster-events.js';
import { WORKER_ENV } from '../../worker/worker-env.js';
import type { BusAccess } from '../../security/bus-access.js';
import type { AttemptSecrets } from '../../security/attempt-secrets.js';
import { serializeWorkerSecrets } from '../../security/worker-secrets.js';
import type { WorkerProgram } from './worker-command.js';
import type { Inspector } from '../inspection.js';
import type { LogLevel, Logger } from '../../log/logger.js';
import type { FailureReport } from '../../protocol/types.js';
import type { HttpChoice } from '../../transport/http-choice.js';
import type { UpdatesPlan } from '../../protocol/updates.js';

/** How partition attempts are isolated: a process each, or a thread each of a partition host process. */
export type Isolation = 'process' | 'thread';

/**
 * A launcher runs one worker process per partition (and relaunches failed ones) and reports what
 * happens to them. The embedded launcher uses child processes on this machine; the Spark launcher
 * runs them as the tasks of a Spark job.
 */

/** What a launcher needs to start a cluster run's workers. */
export interface LaunchPlan {
  clusterId: string;
  partitions: number;
  /** How partition p reaches the run's bus: URL, its own credentials, TLS CA, inbox. Secret. */
  busFor(partition: number): BusAccess;
  /** How the driver reaches the run's bus. Secret. */
  driverBus: BusAccess;
  /** How the Spark runner reaches the run's bus (its own credentials). Secret. */
  runnerBus: BusAccess;
  /**
   * Issues the secrets of the attempts a launcher starts (derived from the run's key, which stays
   * with the driver): `attempt` gives one attempt's control token and registration proof, for a
   * launcher that starts the attempt itself; `partitionKey` a partition's key, for one (Spark) whose
   * attempts are started elsewhere and derive their secrets there. Secret.
   */
  secrets: { attempt(partition: number, attempt: number): AttemptSecrets; partitionKey(partition: number): string };
  /** How every worker of the run starts (the server module compiled, when it is TypeScript). */
  worker: WorkerProgram;
  /** Absolute path or URL of the server module the workers import (`worker.serverModule`), and its export. */
  serverModule: string;
  serverExport: string;
  /** The user's config, as JSON. */
  configJson: string;
  /** Address the partitions bind HTTP to; `auto`: each executor's own address. */
  bindHost: string;
  advertiseHost?: string;
  /** Attempts of one partition that may fail before the run gives up on it. */
  maxFailures: number;
  /** Liveness: workers tick every `tickMs` on a pipe to their launcher, which kills one silent for `hangTimeoutMs`. */
  tickMs: number;
  hangTimeoutMs: number;
  /** Workers leave when the driver's heartbeat is silent this long. */
  driverTimeoutMs: number;
  /** Draining waits this long for running handlers (the stop timeout). */
  drainTimeoutMs: number;
  /** Default timeout of `ctx.request` and registration. */
  requestTimeoutMs: number;
  /** Extra environment variables for the workers. */
  env: Record<string, string>;
  /** How 64-bit integers of Arrow rows become row values. */
  longs?: 'number' | 'bigint';
  /** How collectives send their data unless a call says otherwise. */
  collectiveTransport?: 'nats' | 'direct' | 'auto';
  /** Which HTTP server the partitions use. */
  http?: HttpChoice;
  /** How attempts are isolated (embedded launcher): a process each (default), or a thread each of one partition host process. */
  isolation?: Isolation;
  /** With `isolation: 'thread'`, the old-generation heap limit of each thread, in MB. */
  threadHeapMb?: number;
  /** Keep a spare worker process ready to become a lost partition's next attempt (option `spareWorker`). */
  spareWorker?: boolean;
  /** The user's inspector: the launcher's own actors take it, and workers report their transitions for it. */
  inspect?: Inspector;
  /** Where the run's records go; launchers bind `cluster`, and `partition` and `attempt` for a worker's. */
  logger: Logger;
  /** The level workers log at. */
  logLevel: LogLevel;
  /**
   * The run's live updates (option `updates`): its stream and first sequence.
   * @internal
   */
  updates?: UpdatesPlan;
  /**
   * The run has an events stream (option `events`).
   * @internal
   */
  events?: boolean;
}

/** What a launcher reports; the cluster forwards it to the supervisor. */
export interface LaunchEvents {
  /** An attempt's process died or exited non-zero; `report` is the worker's own, when it wrote one. */
  attemptFailed(partition: number, attempt: number, error: string, report?: FailureReport): void;
  /**
   * A partition failed `maxFailures` times; no further attempt will be made. `all`: the failure
   * took every partition down with it (a Spark job that failed).
   */
  gaveUp(partition: number, failures: number, error: string, all?: boolean): void;
  /** A component the run cannot go on without (e.g. spark-submit) went away. */
  fault(component: string, error: string): void;
  /** An attempt finished and returned these records. */
  result(partition: number, attempt: number, records: unknown[]): void;
  /** The Spark job of the run started, finished or failed (Spark launcher only). */
  spark?(event: SparkEvent): void;
}

/** Runs the worker processes of a cluster run. */
export interface Launcher {
  /** Short name for messages, e.g. `embedded` or `spark local[2]`. */
  readonly kind: string;
  /** Starts every partition's first attempt; resolves once they are launched. */
  launch(plan: LaunchPlan, events: LaunchEvents): Promise<void>;
  /** Stops relaunching, ends every process still running, and resolves when they are gone. */
  stop(): Promise<void>;
  /** Pids of the worker processes running now (for diagnostics and tests). */
  pids(): number[];
  /** Ends every process at once; called from a process `exit` hook, so it must be synchronous. */
  killNow(): void;
  /**
   * Called whenever every partition serves: a launcher that keeps a spare worker (option
   * `spareWorker`) starts one now if it has none, so its start does not compete with the
   * partitions' own.
   */
  prepareSpare?(): void;
  /**
   * Where the run's bus must listen for this launcher's workers to reach it. Without it, or when
   * it says `local`, the bus and the partitions stay on loopback.
   */
  busNetwork?(): BusNetwork;
}

/** Where the run's bus listens and what host workers are told, for workers on other hosts. */
export interface BusNetwork {
  /** True when every worker runs on this machine (loopback is enough). */
  local: boolean;
  /** Address to listen on. */
  listen: string;
  /** Host workers connect to. */
  advertise: string;
}

/**
 * The worker environment every partition of a run shares, without secrets (launchers add
 * partition, attempt and channels, and write the attempt's {@link workerSecrets} on its secret pipe).
 */
export function sharedWorkerEnv(plan: LaunchPlan): Record<string, string> {
  return {
    ...plan.env,
    ...plan.worker.env,
    [WORKER_ENV.clusterId]: plan.clusterId,
    [WORKER_ENV.partitions]: String(plan.partitions),
    [WORKER_ENV.serverModule]: plan.serverModule,
    [WORKER_ENV.serverExport]: plan.serverExport,
    [WORKER_ENV.config]: plan.configJson,
    [WORKER_ENV.tickMs]: String(plan.tickMs),
    [WORKER_ENV.driverTimeoutMs]: String(plan.driverTimeoutMs),
    [WORKER_ENV.drainTimeoutMs]: String(plan.drainTimeoutMs),
    [WORKER_ENV.requestTimeoutMs]: String(plan.requestTimeoutMs),
    [WORKER_ENV.bindHost]: plan.bindHost,
    ...(plan.longs ? { [WORKER_ENV.longs]: plan.longs } : {}),
    ...(plan.collectiveTransport ? { [WORKER_ENV.collectiveTransport]: plan.collectiveTransport } : {}),
    ...(plan.inspect ? { [WORKER_ENV.inspect]: '1' } : {}),
    ...(plan.http ? { [WORKER_ENV.http]: plan.http } : {}),
    [WORKER_ENV.logLevel]: plan.logLevel,
    ...(plan.advertiseHost ? { [WORKER_ENV.advertiseHost]: plan.advertiseHost } : {}),
    ...(plan.updates ? { [WORKER_ENV.updates]: JSON.stringify(plan.updates) } : {}),
    ...(plan.events ? { [WORKER_ENV.events]: '1' } : {}),
  };
}

/** What a launcher writes on the secret pipe of an attempt it starts: the partition's bus access and the attempt's own secrets. */
export function workerSecrets(plan: LaunchPlan, partition: number, attempt: number): string {
  return serializeWorkerSecrets({ bus: plan.busFor(partition), ...plan.secrets.attempt(partition, attempt) });
}
