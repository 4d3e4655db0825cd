import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Cluster, type HttpChoice, type PartitionState } from '../src/index.js';
import { uwsUnavailable } from '../src/transport/uws-load.js';
import { decodeState } from '../src/protocol/messages.js';
import { isAlive, portOpen, sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { DemoCluster } from '../examples/demo-cluster.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

test.serial('the seed demo: 1000 numbers in 2 partitions, served over HTTP and NATS, results on stop', async (t) => {
  const server = await nats.get();
  const watcher = await connect({ servers: server.url });
  t.teardown(() => watcher.close());
  const states = new Map<number, PartitionState[]>();
  watcher.subscribe('sps.*.ctl.state.*', {
    callback: (_e, msg) => {
      const s = decodeState(msg.subject, msg.data);
      const partition = Number(msg.subject.split('.').at(-1));
      states.set(partition, [...(states.get(partition) ?? []), s.state]);
    },
  });
  await watcher.flush();

  const cluster = new DemoCluster({ server: TEST_SERVER, data: { range: { end: 1000 } }, partitions: 2, natsUrl: server.url, log: false });
  t.teardown(() => cluster.stop());
  await cluster.start();
  t.is(cluster.state, 'running');

  const members = cluster.members;
  t.deepEqual(
    members.map((m) => [m.partition, m.attempt, m.state]),
    [
      [0, 0, 'serving'],
      [1, 0, 'serving'],
    ],
  );
  for (const m of members) {
    t.is(m.host, '127.0.0.1');
    t.true(typeof m.port === 'number' && m.port > 0);
    t.true(isAlive(m.pid));
    t.true(m.endpoints.includes('get_list'));
  }
  t.deepEqual([...cluster.hosts.keys()], [0, 1]);

  const expected0 = Array.from({ length: 500 }, (_, i) => i);
  t.deepEqual(await cluster.getPartitionList(0), expected0);
  t.deepEqual(await cluster.request(0, 'get_list'), expected0);
  t.deepEqual(
    await cluster.request(1, 'sum'),
    Array.from({ length: 500 }, (_, i) => 500 + i).reduce((a, b) => a + b),
  );

  const pids = members.map((m) => m.pid);
  const ports = members.map((m) => m.port!);
  await cluster.stop();
  t.is(cluster.state, 'stopped');
  t.deepEqual(
    [...cluster.result()].sort(([a], [b]) => a - b),
    [
      [0, [{ partition: 0, attempt: 0, count: 500, sum: 124750 }]],
      [1, [{ partition: 1, attempt: 0, count: 500, sum: 374750 }]],
    ],
  );
  await watcher.flush();
  for (const p of [0, 1]) t.deepEqual(states.get(p), ['initializing', 'registered', 'serving', 'draining', 'finished']);
  for (const pid of pids) t.false(isAlive(pid), `worker ${pid} still running`);
  for (const port of ports) t.false(await portOpen(port), `port ${port} still open`);
});

/** Each HTTP test runs on both servers; the native one only where a uWebSockets.js binary loads. */
const HTTP_SERVERS: { http: HttpChoice; implementation: RegExp }[] = [
  { http: 'uws', implementation: /^uWebSockets\.js \(native, / },
  { http: 'node', implementation: /^node:http \+ ws \(JavaScript, / },
];

for (const { http, implementation } of HTTP_SERVERS) {
  (http === 'uws' && uwsUnavailable() ? test.serial.skip : test.serial)(
    `${http}: health and /app routes answer, with statuses, headers, errors and bodies`,
    async (t) => {
      const server = await nats.get();
      await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3], partitions: 1, natsUrl: server.url, log: false, http }, async (cluster) => {
        const { host, port } = cluster.hosts.get(0)!;
        const health = await fetch(`http://${host}:${port}/control/health`);
        // Only the native build writes this header (the fork's own JavaScript fallback does not).
        t.is(health.headers.get('uwebsockets'), http === 'uws' ? '20' : null);
        const body = (await health.json()) as { http: string };
        t.like(body, { partition: 0, attempt: 0, state: 'serving', clusterId: cluster.id });
        t.regex(body.http, implementation);
        const echo = await fetch(`http://${host}:${port}/app/echo`, { method: 'POST', body: JSON.stringify({ q: 'hi' }) });
        t.deepEqual(await echo.json(), { partition: 0, got: { q: 'hi' } });
        t.is((await fetch(`http://${host}:${port}/app/nope`)).status, 404);

        // Asynchronous handlers, explicit statuses and headers, thrown errors, bodies.
        const later = await fetch(`http://${host}:${port}/app/later?q=7`);
        t.is(later.status, 201);
        t.is(later.headers.get('x-test'), 'yes');
        t.is(await later.text(), 'later 7');
        const thrown = await fetch(`http://${host}:${port}/app/throws`);
        t.is(thrown.status, 500);
        t.deepEqual(await thrown.json(), { error: { code: 'TEST_THROW', message: 'route refused' } });
        const big = Buffer.alloc(3 * 1024 * 1024, 1);
        const echoed = await fetch(`http://${host}:${port}/app/echo-later?q=b`, { method: 'POST', body: big });
        t.deepEqual(await echoed.json(), { bytes: big.length, q: 'b' });
        const tooBig = await fetch(`http://${host}:${port}/app/echo-later`, { method: 'POST', body: Buffer.alloc(17 * 1024 * 1024) }).catch(
          (err: Error) => err,
        );
        // The server answers 413 as soon as the limit is passed; the client may see the answer or a reset.
        if (tooBig instanceof Response) t.is(tooBig.status, 413);
        else t.regex(String(tooBig.cause ?? tooBig.message), /ECONNRESET|EPIPE|other side closed|fetch failed|SocketError/);
        t.like(await (await fetch(`http://${host}:${port}/control/health`)).json(), { state: 'serving' });
      });
    },
  );
}

test.serial("http 'auto' serves with uWebSockets.js where a binary loads (Node 20 here), else node:http with one warning saying why", async (t) => {
  const server = await nats.get();
  const lines: string[] = [];
  await withCluster(t, { server: TEST_SERVER, data: [1], partitions: 1, natsUrl: server.url, log: (line) => lines.push(line) }, async (cluster) => {
    const { host, port } = cluster.hosts.get(0)!;
    const { http } = (await (await fetch(`http://${host}:${port}/control/health`)).json()) as { http: string };
    await cluster.stop();
    const warnings = lines.filter((l) => l.includes('HTTP served by node:http'));
    const why = uwsUnavailable();
    if (process.versions.modules === '115' && process.platform === 'linux' && process.arch === 'x64') t.is(why, undefined, 'Node 20 on Linux x64 has a binary');
    if (why === undefined) {
      t.regex(http, /^uWebSockets\.js \(native, /);
      t.deepEqual(warnings, []);
    } else {
      t.regex(http, /^node:http/);
      t.is(warnings.length, 1);
      t.true(warnings[0]!.includes(why));
    }
  });
});

test('option http is validated, naming it', (t) => {
  t.throws(() => new Cluster({ server: TEST_SERVER, http: 'fast' as never }), {
    code: 'SPS_INVALID_OPTION',
    message: /"http": must be "auto", "uws", "node", got "fast"/,
  });
});

test.serial('a private nats-server is started and stopped with the cluster, and the cluster restarts after stop', async (t) => {
  const cluster = new Cluster({ server: TEST_SERVER, data: [10, 20, 30, 40], partitions: 2, log: false });
  t.teardown(() => cluster.stop());
  for (let round = 0; round < 2; round++) {
    await cluster.start();
    const natsPid = cluster.natsServerPid!;
    const natsPort = Number(new URL(cluster.natsUrl!.replace('nats:', 'http:')).port);
    t.true(isAlive(natsPid));
    t.deepEqual(await cluster.request(1, 'get_list'), [30, 40]);
    const pids = cluster.members.map((m) => m.pid);
    await cluster.stop();
    t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
    t.false(isAlive(natsPid), 'private nats-server still running');
    t.false(await portOpen(natsPort), 'NATS port still open');
    for (const pid of pids) t.false(isAlive(pid));
  }
});

test.serial('requestAll gathers every partition and reports per-partition errors', async (t) => {
  const server = await nats.get();
  await withCluster(
    t,
    { server: TEST_SERVER, data: { range: { end: 30 } }, partitions: 3, config: { boom: [1] }, natsUrl: server.url, log: false },
    async (cluster) => {
      const sums = await cluster.requestAll<number>('sum');
      t.deepEqual([...sums.keys()], [0, 1, 2]);
      t.deepEqual(
        [...sums.values()].map((r) => (r.ok ? r.value : r.error)),
        [45, 145, 245],
      );

      const booms = await cluster.requestAll('boom');
      t.like(booms.get(0), { ok: true, value: 'fine' });
      t.like(booms.get(2), { ok: true, value: 'fine' });
      const failed = booms.get(1)!;
      t.false(failed.ok);
      if (!failed.ok) {
        t.is(failed.error.code, 'TEST_BOOM');
        t.is(failed.error.partition, 1);
        t.regex(failed.error.message, /Partition 1, endpoint "boom": boom on partition 1/);
      }
      await t.throwsAsync(cluster.request(1, 'boom'), { code: 'TEST_BOOM' });
      await t.throwsAsync(cluster.request(0, 'nope'), { code: 'SPS_UNKNOWN_ENDPOINT', message: /partition 0 has no endpoint "nope"/ });
      await t.throwsAsync(cluster.request(7, 'sum'), { code: 'SPS_UNKNOWN_PARTITION', message: /Partition 7.*the cluster has 3/ });
    },
  );
});

test.serial('partition servers reach each other: peer-to-peer sum over NATS', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: TEST_SERVER, data: { range: { end: 100 } }, partitions: 4, natsUrl: server.url, log: false }, async (cluster) => {
    // Partition 2 computes the total by asking every peer for its local sum.
    t.is(await cluster.request(2, 'peer_sum'), 4950);
  });
});

test.serial('an empty partition still gets a server that knows its index', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: TEST_SERVER, data: [7], partitions: 3, natsUrl: server.url, log: false }, async (cluster) => {
    const who = await cluster.requestAll<{ partition: number }>('whoami');
    t.deepEqual(
      [...who.values()].map((r) => (r.ok ? r.value.partition : -1)),
      [0, 1, 2],
    );
    t.deepEqual(await cluster.request(0, 'get_list'), []);
    t.deepEqual(await cluster.request(2, 'get_list'), [7]);
  });
});

test('options are validated up front, naming the option', (t) => {
  t.throws(() => new Cluster({ server: TEST_SERVER, partitions: 0 }), { code: 'SPS_INVALID_OPTION', message: /"partitions": must be an integer from 1/ });
  t.throws(() => new Cluster({ server: TEST_SERVER, name: 'a.b' }), { message: /"name"/ });
  t.throws(() => new Cluster({ server: TEST_SERVER, config: { n: 1n } }), { message: /"config": must be JSON-serializable/ });
  t.throws(() => new Cluster({ server: TEST_SERVER, maxFailures: 1.5 }), { message: /"maxFailures"/ });
  t.throws(() => new Cluster({} as never), { message: /"server": is required/ });
});

test('a missing nats-server binary gives an error that says how to get one', async (t) => {
  const cluster = new Cluster({ server: TEST_SERVER, natsServer: '/nonexistent/nats-server', log: false });
  const err = await t.throwsAsync(cluster.start(), {
    code: 'SPS_DEPENDENCY_MISSING',
    message: /nats-server at "\/nonexistent\/nats-server" \(option natsServer\)/,
  });
  t.regex(err!.message, /"npx sps setup" installs the pinned nats-server/);
  t.is(cluster.state, 'failed');
});

test('a bad server module fails the start with the module error, leaving nothing behind', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({
    server: { module: TEST_SERVER, export: 'missingExport' },
    partitions: 1,
    maxFailures: 1,
    natsUrl: server.url,
    log: false,
  });
  const err = await t.throwsAsync(cluster.start(), { code: 'SPS_PARTITION_FAILED' });
  t.regex(
    err!.message,
    /Partition 0 failed with an error a retry cannot fix, so it was not retried\. Error: \[SPS_SERVER_MODULE\] Partition server module ".*test-server\.ts": has no export "missingExport"/,
  );
  t.deepEqual(cluster.workerPids, []);
});

test.serial('stop() during start() drains what started and start() rejects saying so', async (t) => {
  const server = await nats.get();
  // Partition 1's init waits for a file the test creates only once stop() was called: the cluster
  // is still starting when partition 0 registers, however slow the machine.
  const gate = join(await mkdtemp(join(tmpdir(), 'sps-gate-')), 'open');
  t.teardown(() => rm(dirname(gate), { recursive: true, force: true }));
  const cluster = new Cluster({ server: TEST_SERVER, data: [1, 2], partitions: 2, config: { initGate: { 1: gate } }, natsUrl: server.url, log: false });
  t.teardown(() => cluster.stop());
  const starting = cluster.start();
  await waitUntil(() => cluster.members.length > 0, 60_000, 'partition 0 registered');
  t.is(cluster.state, 'starting');
  const stopping = cluster.stop();
  await writeFile(gate, '');
  await t.throwsAsync(starting, { code: 'SPS_CLUSTER_STATE', message: /stop\(\) was called before every partition was serving/ });
  await stopping;
  t.is(cluster.state, 'stopped');
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
  t.deepEqual(cluster.workerPids, []);
});

test.serial('stop() called twice at once stops once and both calls resolve', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: TEST_SERVER, data: [1, 2], partitions: 2, natsUrl: server.url, log: false }, async (cluster) => {
    const first = cluster.stop();
    const second = cluster.stop();
    t.is(first, second);
    await Promise.all([first, second]);
    t.is(cluster.state, 'stopped');
    t.is(cluster.result().size, 2);
  });
});
