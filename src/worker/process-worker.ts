/** A worker process: one partition attempt, on the inherited fds its launcher gave it (see `worker.ts`). */
import { WORKER_ENV } from './worker-env.js';
import { readWorkerSecrets } from '../security/worker-secrets.js';
import { startTicking } from './liveness.js';
import { writeFailure } from './result-channel.js';
import { toFailureReport, type FailureReport } from '../protocol/types.js';
import type { WorkerSecrets } from '../security/worker-secrets.js';
import { formatFailure } from '../log/log-format.js';
import { waitAsSpare } from './spare.js';
import { FRAMING } from '../protocol/framing.js';
import { runWorker, workerLogger } from './run-worker.js';
import type { Logger } from '../log/logger.js';

/**
 * Tells the launcher why this worker failed, on its result channel, whatever the log level: read
 * from the environment by itself, as the rest of it may be what was wrong.
 */
async function reportFailure(report: FailureReport): Promise<void> {
  const fd = Number(process.env[WORKER_ENV.resultFd] ?? 3);
  const format = process.env[WORKER_ENV.resultFormat];
  if (!Number.isInteger(fd) || fd < 3 || !(FRAMING.resultFormats as readonly string[]).includes(format ?? '')) return;
  await writeFailure(fd, format as 'msgpack' | 'json', report);
}

/** How long a crashed worker tries to write its failure report before it exits anyway. */
const CRASH_REPORT_MS = 5000;

/**
 * An error nobody caught or a rejection nobody handled ends the attempt as a failure that names
 * it (its code, message and stack reach the driver's reason and log at any log level), not as a
 * bare exit code followed by Node's own trailer.
 */
function failOnCrash(logger: Logger): void {
  const crash = (how: string, err: unknown): void => {
    const report = toFailureReport(err, 'SPS_WORKER_ERROR');
    report.message = `${how}: ${report.message}`;
    logger.error({ code: report.code }, formatFailure(report));
    // A report that cannot be written (a result channel nobody reads) does not keep a crashed worker alive.
    setTimeout(() => process.exit(1), CRASH_REPORT_MS);
    void reportFailure(report)
      .catch(() => {})
      .finally(() => process.exit(1));
  };
  // Once each: a second crash while the first is being reported takes Node's default (exit 1).
  process.once('uncaughtException', (err) => crash('uncaught exception', err));
  process.once('unhandledRejection', (reason) => crash('unhandled rejection', reason));
}

/** A worker process: one partition attempt, on the fds its launcher gave it. */
export async function runProcessWorker(): Promise<never> {
  const logger = workerLogger();
  failOnCrash(logger);
  const started = process.ppid;
  // Exit when the process that launched us is gone, so no orphan keeps a port.
  setInterval(() => {
    if (process.ppid !== started) {
      logger.warn('launcher exited; stopping');
      process.exit(1);
    }
  }, 500).unref();
  let assigned: WorkerSecrets | undefined;
  if (process.env[WORKER_ENV.spare] === '1') {
    try {
      assigned = await waitAsSpare();
    } catch (err) {
      const report = toFailureReport(err, 'SPS_WORKER_ERROR');
      logger.error({ code: report.code }, formatFailure(report));
      await reportFailure(report);
      process.exit(1);
    }
    // Closed without an assignment: the spare was not needed.
    if (!assigned) process.exit(0);
  }
  const code = await runWorker(logger, {
    // Read once from a pipe that is then closed: no secret is in this process's environment, in
    // /proc/<pid>/environ, or in anything the user's code spawns. A spare read them as its assignment.
    secrets: async (env) => assigned ?? readWorkerSecrets(env.secretFd, WORKER_ENV.secretFd),
    // Liveness: the launcher kills this process when the ticks stop (a blocked event loop, a stopped process).
    tick: (env, log) => {
      if (env.tickFd !== undefined) startTicking(env.tickFd, env.tickMs, (line) => log.warn(String(line)));
    },
    reportFailure,
  });
  process.exit(code);
}
