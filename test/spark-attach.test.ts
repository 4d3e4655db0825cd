/**
 * SparkApplication.attach, the application whose runner another process hosts (the Python
 * package's Cluster), without Spark: the test plays the hosting process.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SparkApplication } from '../src/spark/spark-app.js';

const PUBLISH_READY = fileURLToPath(new URL('./helpers/publish-ready.ts', import.meta.url));

test('attach: a host whose runner reports ready at once, before the driver runs again, is not missed', async (t) => {
  // The host publishes `ready` and has the server take it while this process's event loop is
  // blocked (spawnSync): as a loaded runner may do before the driver's SUB would have gone out.
  // `ready` is published once; a subscription the server does not have yet loses it for good.
  let published: ReturnType<typeof spawnSync> | undefined;
  const app = await SparkApplication.attach({
    pid: process.pid,
    maxFailures: 1,
    conf: {},
    readyTimeoutMs: 10_000,
    host: (runner) => {
      published = spawnSync(process.execPath, ['--import', 'tsx', PUBLISH_READY], { input: JSON.stringify(runner), timeout: 60_000, encoding: 'utf8' });
    },
  });
  try {
    t.is(published?.status, 0, String(published?.stderr));
    t.deepEqual({ master: app.info.master, slots: app.info.slots }, { master: 'local[2]', slots: 2 });
  } finally {
    await app.close();
  }
});
