import { WORKER_ENV } from '../runtime/worker-env.js';

/**
 * A launcher runs one worker process per partition (and relaunches failed ones) and reports what
 * happens to them. The embedded launcher uses child processes on this machine; the Spark launcher
 * runs them as the tasks of a Spark job.
 */

/** What a launcher needs to start a cluster run's workers. */
export interface LaunchPlan {
  clusterId: string;
  partitions: number;
  natsUrl: string;
  token: string;
  /** Absolute path or URL of the user's server module, and its export. */
  serverModule: string;
  serverExport: string;
  /** The user's config, as JSON. */
  configJson: string;
  bindHost: string;
  advertiseHost?: string;
  /** Attempts of one partition that may fail before the run gives up on it. */
  maxFailures: number;
  /** Extra environment variables for the workers. */
  env: Record<string, string>;
  /** Where worker output lines go (already prefixed), or `undefined` to drop them. */
  log?: (line: string) => void;
}

/** What a launcher reports; the cluster forwards it to the supervisor. */
export interface LaunchEvents {
  /** An attempt's process died or exited non-zero. */
  attemptFailed(partition: number, attempt: number, error: string): void;
  /** A partition failed `maxFailures` times; no further attempt will be made. */
  gaveUp(partition: number, failures: number, error: string): void;
  /** An attempt finished and returned these records. */
  result(partition: number, attempt: number, records: unknown[]): void;
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
}

/** The worker environment every partition of a run shares (launchers add partition, attempt and channels). */
export function sharedWorkerEnv(plan: LaunchPlan): Record<string, string> {
  return {
    ...plan.env,
    [WORKER_ENV.clusterId]: plan.clusterId,
    [WORKER_ENV.partitions]: String(plan.partitions),
    [WORKER_ENV.natsUrl]: plan.natsUrl,
    [WORKER_ENV.token]: plan.token,
    [WORKER_ENV.serverModule]: plan.serverModule,
    [WORKER_ENV.serverExport]: plan.serverExport,
    [WORKER_ENV.config]: plan.configJson,
    [WORKER_ENV.bindHost]: plan.bindHost,
    ...(plan.advertiseHost ? { [WORKER_ENV.advertiseHost]: plan.advertiseHost } : {}),
  };
}
