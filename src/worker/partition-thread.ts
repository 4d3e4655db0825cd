import { parentPort } from 'node:worker_threads';
import { Writable } from 'node:stream';
import { receiveWorkerSecrets } from '../security/worker-secrets.js';
import { writeFailure } from './result-channel.js';
import { runWorker } from './run-worker.js';
import type { ThreadMessage } from './host-messages.js';
import { WORKER_ENV } from './worker-env.js';
import type { Logger } from '../log/logger.js';

/** The shortest tick interval, as for a worker process. */
const MIN_TICK_MS = 10;

/**
 * One partition attempt run as a thread of a partition host (option `isolation: 'thread'`): its
 * worker environment is the thread's own `process.env`, its rows its `process.stdin`, its secrets
 * the first message on its port; results and liveness ticks go to the host on that port. Ends the
 * thread (not the process) with the attempt's exit code.
 */
export async function runPartitionThread(logger: Logger): Promise<never> {
  const port = parentPort!;
  const post = (m: ThreadMessage): void => port.postMessage(m);
  // Posted messages are queued on the host's side at once: none is lost when the thread ends.
  const results = new Writable({
    write(chunk: Buffer, _encoding, done) {
      post({ t: 'result', data: chunk });
      done();
    },
    final(done) {
      post({ t: 'resultEnd' });
      done();
    },
  });
  const code = await runWorker(logger, {
    secrets: async () => receiveWorkerSecrets(port, "the thread's secrets message"),
    tick: (env) => {
      // From this thread's own event loop: a blocked loop stops its ticks, whatever the host's does.
      post({ t: 'tick' });
      setInterval(() => post({ t: 'tick' }), Math.max(MIN_TICK_MS, env.tickMs)).unref();
    },
    results,
    // In the format its launcher reads (msgpack for the embedded launcher, json for Spark's runner).
    reportFailure: async (report) => writeFailure(results, process.env[WORKER_ENV.resultFormat] === 'json' ? 'json' : 'msgpack', report),
    loaded: () => post({ t: 'loaded' }),
  });
  process.exit(code);
}
