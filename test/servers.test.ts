import test from 'ava';
import { spawn } from 'node:child_process';
import { StopTimeoutError } from '../src/index.js';
import { prepareWorker, workerNodeFlags } from '../src/driver/launch/worker-command.js';
import { firstLine, isAlive, sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { uwsUnavailable } from '../src/transport/uws-load.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());
const NATS_ONLY = new URL('./fixtures/nats-only-server.ts', import.meta.url);
const WORDS = ['ant', 'bee', 'cat', 'dog'].map((word) => ({ word }));

test.serial('a NATS-only server exported as a class registers without a port and gets the config', async (t) => {
  const server = await nats.get();
  await withCluster(
    t,
    {
      server: { module: NATS_ONLY, export: 'WordServer' },
      data: WORDS,
      partitions: 2,
      config: { suffix: '!' },
      natsUrl: server.url,
      log: false,
    },
    async (cluster) => {
      t.deepEqual(
        [...cluster.hosts.values()].map((h) => h.port),
        [null, null],
      );
      t.deepEqual(await cluster.request(1, 'words'), ['cat!', 'dog!']);
      await cluster.stop();
      t.deepEqual(cluster.result().get(0), ['ANT', 'BEE']);
    },
  );
});

test.serial('a server exported as an instance works without subclassing', async (t) => {
  const server = await nats.get();
  await withCluster(
    t,
    { server: { module: NATS_ONLY, export: 'lengths' }, data: WORDS.slice(0, 3), partitions: 1, natsUrl: server.url, log: false },
    async (cluster) => {
      t.deepEqual(await cluster.request(0, 'lengths'), [3, 3, 3]);
    },
  );
});

for (const http of ['uws', 'node'] as const) {
  (http === 'uws' && uwsUnavailable() ? test.serial.skip : test.serial)(
    `${http}: POST /control/shutdown with the token drains that partition; its result is kept`,
    async (t) => {
      const server = await nats.get();
      await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, log: false, http }, async (cluster) => {
        const { host, port } = cluster.hosts.get(0)!;
        const base = `http://${host}:${port}/control`;
        t.is((await fetch(`${base}/shutdown`, { method: 'POST', headers: { 'x-sps-token': 'wrong' } })).status, 403);
        t.like(await (await fetch(`${base}/health`)).json(), { refusedShutdowns: 1, state: 'serving' });
        const res = await fetch(`${base}/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${cluster.controlToken(0)}` } });
        t.is(res.status, 202);
        t.like(await res.json(), { partition: 0, state: 'draining' });
        await waitUntil(() => cluster.members[0]?.state === 'finished', 10_000, 'partition 0 finished');
        await t.throwsAsync(cluster.request(0, 'sum'), { code: 'SPS_NOT_SERVING', message: /partition is finished \(attempt 0\)/ });
        t.is(await cluster.request(1, 'sum'), 7);
        await cluster.stop();
        t.deepEqual(
          [...cluster.result()].sort(([a], [b]) => a - b).map(([, r]) => r),
          [[{ partition: 0, attempt: 0, count: 2, sum: 3 }], [{ partition: 1, attempt: 0, count: 2, sum: 7 }]],
        );
      });
    },
  );
}

test.serial('the stop timeout names the partitions whose result did not come, and kills them', async (t) => {
  const server = await nats.get();
  await withCluster(
    t,
    {
      server: TEST_SERVER,
      data: [1, 2, 3],
      partitions: 3,
      config: { hangResult: [1] },
      stopTimeoutMs: 2000,
      natsUrl: server.url,
      log: false,
    },
    async (cluster) => {
      const pids = cluster.members.map((m) => m.pid);
      const err = await t.throwsAsync(cluster.stop(), { instanceOf: StopTimeoutError });
      // Partition 1 never returns; on a loaded machine the others may be late too. When the timeout
      // falls is the supervisor's logic, tested on a simulated clock in actors.test.ts; here: every
      // partition is either named or has its result, and every worker is gone.
      const arrived = [...cluster.result().keys()].sort();
      t.true(err!.missing.includes(1));
      t.deepEqual([...err!.missing, ...arrived].sort(), [0, 1, 2]);
      t.regex(err!.message, new RegExp(`within 2000 ms: partition\\(s\\) ${err!.missing.join(', ')} did not return results`));
      t.is(cluster.state, 'failed');
      for (const p of arrived) t.deepEqual(cluster.result().get(p), [{ partition: p, attempt: 0, count: 1, sum: p + 1 }]);
      for (const pid of pids) t.false(isAlive(pid));
    },
  );
});

test('a worker started with a bad environment exits 1 naming the variable', async (t) => {
  const { command, args } = await prepareWorker(new URL('./fixtures/test-server.ts', import.meta.url).pathname);
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(command, args, { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      // The worker logs JSON records on stderr; the messages are what it said.
      const said = (): string =>
        stderr
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => (JSON.parse(l) as { msg: string }).msg)
          .join('\n');
      child.on('close', (code) => resolve({ code, stderr: said() }));
    });
  const missing = await run({ SPS_CLUSTER_ID: 'c1' });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /\[SPS_INVALID_OPTION\] Invalid option "SPS_PARTITIONS": environment variable is not set/);
  const bad = await run({ SPS_CLUSTER_ID: 'c1', SPS_PARTITIONS: '2', SPS_PARTITION: '5', SPS_ATTEMPT: '0' });
  t.regex(bad.stderr, /"SPS_PARTITION": 5 is not below SPS_PARTITIONS=2/);
  const badId = await run({ SPS_CLUSTER_ID: 'a.b' });
  t.regex(badId.stderr, /"SPS_CLUSTER_ID": may only hold letters/);
});

test("workers run with one V8 background thread and, from Node 24, a bounded young generation, unless the driver's NODE_OPTIONS sets its own", async (t) => {
  // The test above starts workers with these flags: Node refuses a flag it does not know.
  const { args } = await prepareWorker(new URL('./fixtures/test-server.ts', import.meta.url).pathname);
  t.deepEqual(args.slice(0, -1), workerNodeFlags());
  t.deepEqual(workerNodeFlags('', 24), ['--max-semi-space-size=1', '--v8-pool-size=1']);
  t.deepEqual(workerNodeFlags('--max-semi-space-size=16 --enable-source-maps', 24), ['--v8-pool-size=1']);
  t.deepEqual(workerNodeFlags('--v8-pool-size=4 --max-semi-space-size=16', 24), []);
  // Before Node 24 a V8 flag would cost every worker the binary's cache of the Node built-ins.
  t.deepEqual(workerNodeFlags('', 20), ['--v8-pool-size=1']);
  t.deepEqual(workerNodeFlags('', 22), ['--v8-pool-size=1']);
  t.deepEqual(workerNodeFlags('--v8-pool-size=2', 22), []);
});

test('when the driver process is SIGKILLed, its nats-server and workers exit too', async (t) => {
  const driver = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), new URL('./fixtures/driver.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => driver.kill('SIGKILL'));
  const line = await firstLine(driver);
  const { nats, workers } = JSON.parse(line) as { nats: number; workers: number[] };
  t.is(workers.length, 2);
  for (const pid of [nats, ...workers]) t.true(isAlive(pid));
  driver.kill('SIGKILL');
  await waitUntil(() => [nats, ...workers].every((pid) => !isAlive(pid)), 10_000, 'nats-server and workers to exit');
  for (const pid of [nats, ...workers]) t.false(isAlive(pid));
});
