/**
 * The worker process: runs one partition. Launchers start it with the environment described in
 * `worker-env.ts`; it exits 0 when the partition finished and 1 when it failed. It logs JSON
 * records on stderr (see `logger.ts`), which its launcher forwards to the driver's logger.
 */
import { readWorkerEnv, WORKER_ENV } from './worker-env.js';
import { readWorkerSecrets } from '../security/worker-secrets.js';
import { hostPartition } from './partition-host.js';
import { startTicking } from './liveness.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../log/logger.js';
import { writeFailure } from './result-channel.js';
import { formatFailure } from '../log/log-format.js';
import { toFailureReport, type FailureReport } from '../protocol/types.js';
import { FRAMING } from '../protocol/framing.js';

const started = process.ppid;
const level = process.env[WORKER_ENV.logLevel];
let logger: Logger = createLogger((LOG_LEVELS as readonly string[]).includes(level ?? '') ? (level as LogLevel) : 'info');

// Exit when the process that launched us is gone, so no orphan keeps a port.
setInterval(() => {
  if (process.ppid !== started) {
    logger.warn('launcher exited; stopping');
    process.exit(1);
  }
}, 500).unref();

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

try {
  const env = readWorkerEnv();
  // Read once from a pipe that is then closed: no secret is in this process's environment, in
  // /proc/<pid>/environ, or in anything the user's code spawns.
  const secrets = await readWorkerSecrets(env.secretFd, WORKER_ENV.secretFd);
  logger = logger.child({ cluster: env.clusterId, partition: env.partition, attempt: env.attempt });
  // Only the modules loaded from here on (the compiled server) have their maps read: the library's
  // own maps would cost every worker's start, and its frames are not the user's.
  if (env.sourceMaps) process.setSourceMapsEnabled(true);
  // Liveness: the launcher kills this process when the ticks stop (a blocked event loop, a stopped process).
  if (env.tickFd !== undefined) startTicking(env.tickFd, env.tickMs, (line) => logger.warn(String(line)));
  const { state, error } = await hostPartition(env, secrets, logger);
  // A failure was already logged and sent to the driver by the actor's `failed` report.
  if (state !== 'finished') await reportFailure(error ?? { code: 'SPS_WORKER_ERROR', message: `ended ${state}` });
  process.exit(state === 'finished' ? 0 : 1);
} catch (err) {
  const report = toFailureReport(err, 'SPS_WORKER_ERROR');
  logger.error({ code: report.code }, formatFailure(report));
  await reportFailure(report);
  process.exit(1);
}
