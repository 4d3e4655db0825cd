/**
 * AbortSignal on `stop()` and on the partition context's calls (`ctx.request`, `ctx.requestAll`,
 * `ctx.waitForPeers`): each abort case, and nothing left running after an aborted stop.
 */
import test from 'ava';
import { AbortedError, type ProgressEvent } from '../src/index.js';
import { isAlive, sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

test.serial('ctx.request, ctx.requestAll and ctx.waitForPeers reject with the signal’s reason; an unaborted signal changes nothing', async (t) => {
  const server = await nats.get();
  await withCluster(
    t,
    { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, config: { abortWaitInInit: true }, log: false },
    async (cluster) => {
      const got = await cluster.request<Record<string, unknown>>(0, 'abort_calls');
      t.deepEqual(got, {
        waitForPeers: 'init stopped waiting',
        request: 'caller gave up',
        requestAll: 'caller gave up',
        before: 'already aborted',
        never: 3 + 4,
        peers: 2,
      });
      // A stop whose signal never aborts is a plain stop.
      await cluster.stop({ signal: new AbortController().signal });
      t.is(cluster.state, 'stopped');
      t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
    },
  );
});

test.serial('aborting stop() while it waits for results tears everything down at once and keeps the results in', async (t) => {
  const server = await nats.get();
  await withCluster(
    t,
    { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, config: { hangResult: [1] }, log: false },
    async (cluster) => {
      const pids = cluster.workerPids;
      t.is(pids.length, 2);
      const ac = new AbortController();
      const reason = new Error('operator gave up');
      cluster.on('progress', (e: ProgressEvent) => {
        // Partition 0's result is in; partition 1's never comes.
        if (e.phase === 'stop' && e.done === 1) ac.abort(reason);
      });
      const stopping = cluster.stop({ signal: ac.signal });
      const joined = cluster.stop(); // a second caller shares the stop, and its outcome
      const err = await t.throwsAsync(stopping, { instanceOf: AbortedError });
      t.is(err?.code, 'SPS_ABORTED');
      t.is(err?.cause, reason);
      t.regex(err!.message, /stop aborted: .*partition\(s\) 1/);
      await t.throwsAsync(joined, { instanceOf: AbortedError });
      t.is(cluster.state, 'stopped');
      t.deepEqual([...cluster.result().keys()], [0]);
      t.deepEqual(cluster.workerPids, []);
      await waitUntil(() => pids.every((p) => !isAlive(p)), 10_000, 'every worker gone');
    },
  );
});

test.serial('stop() with an already aborted signal stops at once: no worker and no nats-server left', async (t) => {
  await withCluster(t, { server: TEST_SERVER, data: [1, 2], partitions: 2, log: false }, async (cluster) => {
    const pids = [...cluster.workerPids, cluster.natsServerPid!];
    const reason = new Error('no time left');
    const err = await t.throwsAsync(cluster.stop({ signal: AbortSignal.abort(reason) }), { instanceOf: AbortedError });
    t.is(err?.cause, reason);
    t.is(cluster.state, 'stopped');
    await waitUntil(() => pids.every((p) => !isAlive(p)), 10_000, 'workers and nats-server gone');
    // Stopped means stopped: it starts again.
    await cluster.start();
    await cluster.stop();
    t.is(cluster.result().size, 2);
  });
});
