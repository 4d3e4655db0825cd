import { readWorkerEnv, WORKER_ENV, type WorkerEnv } from './worker-env.js';
import type { WorkerSecrets } from '../security/worker-secrets.js';
import { hostPartition } from './partition-host.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../log/logger.js';
import type { ResultChannel } from './result-channel.js';
import { formatFailure } from '../log/log-format.js';
import { toFailureReport, type FailureReport } from '../protocol/types.js';

/** The worker's logger, at the level its environment says. */
export function workerLogger(): Logger {
  const level = process.env[WORKER_ENV.logLevel];
  return createLogger((LOG_LEVELS as readonly string[]).includes(level ?? '') ? (level as LogLevel) : 'info');
}

/** How one partition attempt meets whoever started it: a process's inherited fds, or a thread's port. */
export interface WorkerIo {
  /** Its secrets, read once. */
  secrets(env: WorkerEnv): Promise<WorkerSecrets>;
  /** Starts its liveness ticks. */
  tick(env: WorkerEnv, logger: Logger): void;
  /** Where its results go; undefined: the fd `SPS_RESULT_FD`. */
  results?: ResultChannel;
  /** Tells the launcher why it failed, on its result channel, whatever the log level. */
  reportFailure(report: FailureReport): Promise<void>;
  /** Called once its server module is loaded (the CPU-heavy part of a start is over). */
  loaded?(): void;
}

/**
 * Runs one partition attempt from its worker environment (`process.env`) to its end, in a worker
 * process or a partition thread alike; resolves with the exit code (0 finished, 1 failed).
 */
export async function runWorker(logger: Logger, io: WorkerIo): Promise<number> {
  try {
    const env = readWorkerEnv();
    const secrets = await io.secrets(env);
    logger = logger.child({ cluster: env.clusterId, partition: env.partition, attempt: env.attempt });
    // Only the modules loaded from here on (the compiled server) have their maps read: the library's
    // own maps would cost every worker's start, and its frames are not the user's.
    if (env.sourceMaps) process.setSourceMapsEnabled(true);
    io.tick(env, logger);
    const { state, error } = await hostPartition(env, secrets, logger, io.results ?? env.resultFd, io.loaded);
    // A failure was already logged and sent to the driver by the actor's `failed` report.
    if (state !== 'finished') await io.reportFailure(error ?? { code: 'SPS_WORKER_ERROR', message: `ended ${state}` });
    return state === 'finished' ? 0 : 1;
  } catch (err) {
    const report = toFailureReport(err, 'SPS_WORKER_ERROR');
    logger.error({ code: report.code }, formatFailure(report));
    await io.reportFailure(report);
    return 1;
  }
}
