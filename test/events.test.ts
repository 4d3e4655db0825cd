/**
 * The cluster's events, in order, for a start, a SIGKILL retry, a partition lost after start and a
 * stop; abort signals on start and requests; `await using`.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, PartitionFailedError } from '../src/index.js';
import { recordEvents as record } from './helpers/event-log.js';
import { isAlive, sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { testCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

test.serial('events come in order: start, a SIGKILL retry, a partition lost after start, stop', async (t) => {
  const server = await nats.get();
  const cluster = testCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, maxFailures: 2, log: false });
  const seen = record(cluster);
  await cluster.start();
  const of = (p: number): string[] => seen.filter((l) => l.startsWith(`p${p} `));
  t.deepEqual(of(0), ['p0 a0 registered', 'p0 a0 serving']);
  t.deepEqual(of(1), ['p1 a0 registered', 'p1 a0 serving']);
  t.is(seen[0], 'state idle→starting');
  t.is(seen.at(-1), 'state starting→running');
  t.is(seen.at(-2), 'start 2/2');
  const starts = seen.filter((l) => l.startsWith('start '));
  t.deepEqual(starts, [...new Set(starts)], 'progress only when it changes');

  seen.length = 0;
  process.kill(cluster.members[1]!.pid, 'SIGKILL');
  await waitUntil(() => seen.includes('p1 a1 serving'), 60_000, 'attempt 1 serving');
  t.deepEqual(seen, ['p1 a0 failed', 'p1 a1 replaced from a0', 'p1 a1 registered', 'p1 a1 serving']);

  seen.length = 0;
  process.kill(cluster.members[1]!.pid, 'SIGKILL');
  await waitUntil(() => cluster.state === 'failed', 60_000, 'the cluster failing');
  t.deepEqual(seen, ['p1 a1 failed', 'p1 a1 lost after 2', 'state running→failed (PartitionFailedError)']);

  seen.length = 0;
  await t.throwsAsync(cluster.stop(), { instanceOf: PartitionFailedError });
  t.deepEqual(seen, ['state failed→stopping', 'stop 0/2', 'p0 a0 draining', 'p0 a0 finished', 'stop 1/2', 'state stopping→failed (PartitionFailedError)']);
  t.deepEqual([...cluster.result().keys()], [0]);
});

test.serial('an aborted start stops everything it launched and rejects with the signal’s reason', async (t) => {
  const server = await nats.get();
  // Partition 1 stays in init until the gate file exists: the start is aborted while it waits.
  const dir = mkdtempSync(join(tmpdir(), 'sps-events-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const gate = join(dir, 'gate');
  const cluster = testCluster(t, { server: TEST_SERVER, data: [1, 2], partitions: 2, config: { initGate: { '1': gate } }, natsUrl: server.url, log: false });
  const seen = record(cluster);
  const abort = new AbortController();
  cluster.on('member', (e) => {
    if (e.partition === 0 && e.kind === 'serving') {
      abort.abort(new Error('no longer needed'));
      // Let partition 1 finish its init: it registers into a stopping cluster and drains at once.
      writeFileSync(gate, '');
    }
  });
  const pids: number[] = [];
  cluster.on('member', (e) => e.pid && pids.push(e.pid));
  await t.throwsAsync(cluster.start({ signal: abort.signal }), { message: 'no longer needed' });
  t.is(cluster.state, 'stopped', seen.join('\n'));
  t.is(seen.at(-1), 'state stopping→stopped');
  t.true(pids.length >= 1);
  for (const pid of [...pids, ...cluster.workerPids]) t.false(isAlive(pid), `worker ${pid} left running`);
  await t.throwsAsync(cluster.start({ signal: AbortSignal.abort() }), { any: true, name: 'AbortError' });
  t.is(cluster.state, 'stopped');
});

test.serial('a request or requestAll given an aborted signal rejects with its reason; the cluster serves on; await using stops it', async (t) => {
  const server = await nats.get();
  let pids: number[];
  {
    await using cluster = new Cluster({ server: TEST_SERVER, data: [1, 2, 3], partitions: 2, natsUrl: server.url, log: false });
    await cluster.start();
    pids = cluster.workerPids;
    const abort = new AbortController();
    const pending = cluster.request(0, 'sum', undefined, { signal: abort.signal });
    abort.abort(new Error('user gave up'));
    await t.throwsAsync(pending, { message: 'user gave up' });
    await t.throwsAsync(cluster.requestAll('sum', undefined, { signal: AbortSignal.abort() }), { any: true, name: 'AbortError' });
    t.is(await cluster.request(0, 'sum'), 1);
    t.is(cluster.state, 'running');
  }
  t.is(pids.length, 2);
  for (const pid of pids) t.false(isAlive(pid), `worker ${pid} left running after the scope`);
});
