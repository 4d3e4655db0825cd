/**
 * The worker process: runs one partition. Launchers start it with the environment described in
 * `worker-env.ts`; it exits 0 when the partition finished and 1 when it failed.
 */
import { readWorkerEnv, SECRET_ENV } from './worker-env.js';
import { hostPartition } from './partition-host.js';
import { startTicking } from './liveness.js';

const started = process.ppid;
let prefix = '[sps worker]';
const log = (...args: unknown[]): void => {
  process.stderr.write(`${prefix} ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}\n`);
};

// Exit when the process that launched us is gone, so no orphan keeps a port.
setInterval(() => {
  if (process.ppid !== started) {
    log('launcher exited; stopping');
    process.exit(1);
  }
}, 500).unref();

try {
  const env = readWorkerEnv();
  // Read once; the user's code and anything it spawns never see the run's secrets in the environment.
  for (const name of SECRET_ENV) delete process.env[name];
  prefix = `[sps ${env.clusterId} p${env.partition}/a${env.attempt}]`;
  // Only the modules loaded from here on (the compiled server) have their maps read: the library's
  // own maps would cost every worker's start, and its frames are not the user's.
  if (env.sourceMaps) process.setSourceMapsEnabled(true);
  // Liveness: the launcher kills this process when the ticks stop (a blocked event loop, a stopped process).
  if (env.tickFd !== undefined) startTicking(env.tickFd, env.tickMs, log);
  const { state } = await hostPartition(env, log);
  // A failure was already logged by the actor's `failed` report.
  process.exit(state === 'finished' ? 0 : 1);
} catch (err) {
  const e = err as Error & { code?: string };
  log(`failed: [${e.code ?? 'SPS_WORKER_ERROR'}] ${e.message}`);
  process.exit(1);
}
