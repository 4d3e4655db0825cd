/**
 * A spare worker process (option `spareWorker`): started ahead of need with the run's shared
 * environment and no partition, it loads what an attempt loads (the library, the server module),
 * then waits on its secret pipe. When a partition's attempt is lost, its launcher writes there
 * which partition and attempt the spare becomes, with that attempt's secrets, and the spare goes
 * on as a worker started for it would, minus the start it already made.
 */
import { WORKER_ENV } from './worker-env.js';
import { moduleUrl } from './load-server.js';
import { loadHistogramClass } from './request-recorder.js';
import { readSpareAssignment } from '../security/worker-secrets.js';
import type { WorkerSecrets } from '../security/worker-secrets.js';

/**
 * Loads the server module, then waits for the assignment; resolves with the attempt's secrets once
 * `SPS_PARTITION` and `SPS_ATTEMPT` are set, or `undefined` when the launcher closed the pipe
 * without one (the spare is not needed).
 * @throws InvalidOptionError when the pipe holds no valid assignment.
 */
export async function waitAsSpare(env: NodeJS.ProcessEnv = process.env): Promise<WorkerSecrets | undefined> {
  // As a started attempt would, from the server module on: its stack traces use its source maps.
  if (env[WORKER_ENV.sourceMaps] === '1') process.setSourceMapsEnabled(true);
  const server = env[WORKER_ENV.serverModule];
  // An import that fails fails again, and is reported, when the attempt loads its server.
  if (server) await import(moduleUrl(server)).catch(() => {});
  // What an attempt loads with its first request: the request counters' histograms.
  if (env[WORKER_ENV.requestStats] !== '0') await loadHistogramClass();
  const assignment = await readSpareAssignment(Number(env[WORKER_ENV.secretFd]), WORKER_ENV.secretFd);
  if (!assignment) return undefined;
  env[WORKER_ENV.partition] = String(assignment.partition);
  env[WORKER_ENV.attempt] = String(assignment.attempt);
  return assignment.secrets;
}
