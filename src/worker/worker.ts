/**
 * The worker entry: runs one partition. Launchers start it with the environment described in
 * `worker-env.ts`; it exits 0 when the partition finished and 1 when it failed. It logs JSON
 * records on stderr (see `logger.ts`), which its launcher forwards to the driver's logger.
 * With `SPS_PARTITION_HOST=1` it is a partition host process instead (option `isolation:
 * 'thread'`), which runs this same entry as one thread per partition attempt.
 */
import { isMainThread } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { WORKER_ENV } from './worker-env.js';
import { readWorkerSecrets } from '../security/worker-secrets.js';
import { startTicking } from './liveness.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../log/logger.js';
import { writeFailure } from './result-channel.js';
import type { FailureReport } from '../protocol/types.js';
import { FRAMING } from '../protocol/framing.js';
import { runWorker } from './run-worker.js';
import { runPartitionThread } from './partition-thread.js';
import { runPartitionHost } from './thread-host.js';

const level = process.env[WORKER_ENV.logLevel];
const logger: Logger = createLogger((LOG_LEVELS as readonly string[]).includes(level ?? '') ? (level as LogLevel) : 'info');

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

/** A worker process: one partition attempt, on the fds its launcher gave it. */
async function runProcess(): Promise<never> {
  const started = process.ppid;
  // Exit when the process that launched us is gone, so no orphan keeps a port.
  setInterval(() => {
    if (process.ppid !== started) {
      logger.warn('launcher exited; stopping');
      process.exit(1);
    }
  }, 500).unref();
  const code = await runWorker(logger, {
    // Read once from a pipe that is then closed: no secret is in this process's environment, in
    // /proc/<pid>/environ, or in anything the user's code spawns.
    secrets: async (env) => readWorkerSecrets(env.secretFd, WORKER_ENV.secretFd),
    // Liveness: the launcher kills this process when the ticks stop (a blocked event loop, a stopped process).
    tick: (env, log) => {
      if (env.tickFd !== undefined) startTicking(env.tickFd, env.tickMs, (line) => log.warn(String(line)));
    },
    reportFailure,
  });
  process.exit(code);
}

if (!isMainThread) await runPartitionThread(logger);
// Its threads run the entry this process was started with (import.meta.url may name the source
// of a compiled entry).
else if (process.env[WORKER_ENV.partitionHost] === '1') runPartitionHost(pathToFileURL(process.argv[1]!));
else await runProcess();
