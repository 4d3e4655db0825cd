/**
 * The run as an attacker holding one partition's secrets sees it (as if that partition's executor
 * were compromised), or a process the partition's own code spawns: each partition attempt has its
 * own control token and registration proof, the dashboard a token no worker holds, and no secret
 * is in any worker's environment, and on Spark a task carries its own partition's secrets only.
 * Real nats-server, real worker processes, real Spark (local).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Cluster, SparkLauncher, type BusAccess, type Isolation, type SparkApplication } from '../src/index.js';
import { resolveOptions } from '../src/driver/options.js';
import { encode } from '../src/protocol/codec.js';
import { decodeMembers, decodeRegisterAck, encodeRegistration } from '../src/protocol/messages.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import type { NatsConnection } from '../src/transport/bus.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { waitUntil } from './helpers/harness.js';
import { startApp, testLog } from './helpers/spark-harness.js';
import { PureRun } from './helpers/pure-machine.js';
import { runScript } from './helpers/python-script.js';
import { supervisorMachine } from '../src/actors/supervisor.js';
import { testCluster } from './helpers/with-cluster.js';

const PROBE_SERVER = new URL('./fixtures/secret-probe-server.ts', import.meta.url);

async function startCaptured(
  t: import('ava').ExecutionContext,
  partitions = 3,
  isolation?: Isolation,
): Promise<{ cluster: Cluster; launcher: CapturingLauncher }> {
  const launcher = await CapturingLauncher.create([1, 2, 3, 4, 5, 6], partitions, isolation);
  const cluster = testCluster(t, { server: PROBE_SERVER, partitions, launcher, log: false, stopTimeoutMs: 10_000 });
  await cluster.start();
  return { cluster, launcher };
}

async function connectAs(t: import('ava').ExecutionContext, access: BusAccess, name: string): Promise<NatsConnection> {
  const nc = await connectBus(access, name);
  t.teardown(() => nc.close());
  return nc;
}

/** Every secret of a run the driver handed out, by name: seeds, per-attempt secrets and partition keys, the dashboard's token. */
function runSecrets(cluster: Cluster, launcher: CapturingLauncher, attempts = 2): Record<string, string> {
  const plan = launcher.plan!;
  const found: Record<string, string> = { 'dashboard token': cluster.token! };
  for (let p = 0; p < cluster.partitions; p++) {
    const auth = plan.busFor(p).auth;
    if (auth && 'nkeySeed' in auth) found[`p${p} seed`] = auth.nkeySeed;
    found[`p${p} key`] = plan.secrets.partitionKey(p);
    for (let a = 0; a < attempts; a++) {
      const s = plan.secrets.attempt(p, a);
      found[`p${p} a${a} control token`] = s.controlToken;
      found[`p${p} a${a} proof`] = s.proof;
    }
  }
  return found;
}

function secretsIn(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, v]) => text.includes(v))
    .map(([k]) => k);
}

async function membersView(nc: NatsConnection, cluster: Cluster): Promise<{ epoch: number; generation: number }> {
  const reply = await nc.request(subjectsFor(cluster.id!).membersGet, encode('members-get', {}), { timeout: 30_000 });
  const { epoch, generation } = decodeMembers(reply.subject, reply.data);
  return { epoch, generation };
}

test('the supervisor counts a forged registration and changes nothing else (pure machine)', (t) => {
  const run = new PureRun(supervisorMachine, { partitions: 2, registerTimeoutMs: 1000, startTimeoutMs: 2000, stopTimeoutMs: 1000 });
  const before = run.snapshot.context;
  run.send({ type: 'FORGED' });
  const after = run.snapshot.context;
  t.is(after.forged, 1);
  t.deepEqual({ ...after, forged: 0 }, before);
  t.deepEqual(run.effects, []);
});

test("with partition 0's control token, no other partition (or attempt) shuts down, and the dashboard stays shut", async (t) => {
  const { cluster, launcher } = await startCaptured(t);
  const own = launcher.plan!.secrets.attempt(0, 0).controlToken;
  const shutdown = (p: number, token: string) => {
    const { host, port } = cluster.hosts.get(p)!;
    return fetch(`http://${host}:${port}/control/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  };
  const health = async (p: number) => {
    const { host, port } = cluster.hosts.get(p)!;
    return (await (await fetch(`http://${host}:${port}/control/health`)).json()) as { state: string; refusedShutdowns: number };
  };
  for (const p of [1, 2]) {
    const res = await shutdown(p, own);
    t.is(res.status, 403, `partition ${p} took partition 0's token`);
    t.like(await res.json(), { error: { code: 'SPS_BAD_TOKEN' } });
    t.like(await health(p), { state: 'serving', refusedShutdowns: 1 });
  }
  // Per attempt: the token of partition 0's next attempt does not open its current one.
  t.is((await shutdown(0, launcher.plan!.secrets.attempt(0, 1).controlToken)).status, 403);

  // The dashboard's token is the driver's own: a partition's token opens nothing there.
  const dashboard = await cluster.dashboard();
  const snapshot = (token: string) => fetch(new URL('/snapshot', dashboard.url), { headers: { authorization: `Bearer ${token}` } });
  t.is((await snapshot(own)).status, 401);
  t.is((await fetch(new URL(`/?token=${own}`, dashboard.url))).status, 401);
  t.is((await snapshot(cluster.token!)).status, 200);
  t.not(cluster.token, own);

  // The attempt's own token still works on itself, and only it drains.
  t.is((await shutdown(0, cluster.controlToken(0))).status, 202);
  await waitUntil(() => cluster.members[0]?.state === 'finished', 30_000, 'partition 0 finished');
  t.deepEqual(
    cluster.members.map((m) => m.state),
    ['finished', 'serving', 'serving'],
  );
  await cluster.stop();
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1, 2]);
});

test("with partition 0's credentials and proof, registrations for attempts no launcher started are refused, counted, and change nothing", async (t) => {
  const { cluster, launcher } = await startCaptured(t);
  const plan = launcher.plan!;
  const s = subjectsFor(cluster.id!);
  const p0 = await connectAs(t, plan.busFor(0), 'intruder-p0');
  const before = { view: await membersView(p0, cluster), members: cluster.members, forged: cluster.stats.forged };
  t.is(before.forged, 0);
  const ownProof = plan.secrets.attempt(0, 0).proof;
  const forged = [
    // Attempt 2^40 with the proof partition 0 holds (its attempt 0's).
    { attempt: 2 ** 40, proof: ownProof },
    // The next attempt, with a made-up proof.
    { attempt: 1, proof: 'ab'.repeat(32) },
    // Attempt 0 again, with its own proof: a proof opens one registration only.
    { attempt: 0, proof: ownProof },
  ];
  for (const f of forged) {
    const reply = await p0.request(
      s.register(0),
      encodeRegistration({ attempt: f.attempt, host: '203.0.113.66', port: 9, pid: 1, endpoints: ['rows'], proof: f.proof }),
      { timeout: 30_000 },
    );
    const ack = decodeRegisterAck(reply.subject, reply.data);
    t.like(ack, { accepted: false, members: [], generation: 0 });
    t.regex(ack.reason!, new RegExp(`attempt ${f.attempt} of partition 0 was not started by the launcher`));
  }
  await waitUntil(() => cluster.stats.forged === forged.length, 10_000, 'forged registrations counted');
  t.deepEqual(await membersView(p0, cluster), before.view);
  t.deepEqual(cluster.members, before.members);
  t.deepEqual(await Promise.all([0, 1, 2].map((p) => cluster.request(p, 'rows'))), [2, 2, 2]);
  await cluster.stop();
  t.deepEqual(
    [...cluster.result()].sort(([a], [b]) => a - b).map(([, r]) => r),
    [0, 1, 2].map((p) => [{ partition: p, attempt: 0, rows: 2 }]),
  );
});

for (const isolation of ['process', 'thread'] as const) {
  test(`no secret is in a worker's environment, nor can a process its server spawns find one (isolation ${isolation})`, async (t) => {
    const { cluster, launcher } = await startCaptured(t, 3, isolation);
    const secrets = runSecrets(cluster, launcher);
    for (const m of cluster.members) {
      const environ = readFileSync(`/proc/${m.pid}/environ`, 'latin1');
      // A worker process's own environment, or the partition host's (its threads' are copies in its memory).
      t.true(environ.includes(isolation === 'thread' ? 'SPS_PARTITION_HOST=1\0' : `SPS_CLUSTER_ID=${cluster.id}\0`), 'not the worker environment');
      t.false(/(^|\0)SPS_(BUS|TOKEN)=/.test(environ));
      t.deepEqual(secretsIn(environ, secrets), [], `partition ${m.partition}'s /proc/${m.pid}/environ`);
      const probe = await cluster.request<{ pid: number; output: string }>(m.partition, 'probe');
      t.is(probe.pid, m.pid);
      t.true(probe.output.includes(`SPS_PARTITION=${m.partition}`), 'the probe read no environment');
      t.deepEqual(secretsIn(probe.output, secrets), [], `what partition ${m.partition}'s child found`);
    }
    await cluster.stop();
  });
}

let app: SparkApplication | undefined;
test.after.always(async () => {
  await app?.close();
});

test.serial("on Spark, a task's Node worker gets its secrets on a pipe: none in its environment, and its registration proof holds", async (t) => {
  t.timeout(300_000);
  app = await startApp('local[2]');
  const options = { server: PROBE_SERVER, partitions: 2, log: testLog, startTimeoutMs: 120_000 };
  const launcher = new CapturingLauncher(new SparkLauncher(resolveOptions({ ...options, spark: app, source: { range: { end: 4 } } })));
  const cluster = testCluster(t, { ...options, launcher });
  // Every partition registered: the runner derived each attempt's proof as the driver checks it.
  await cluster.start();
  t.is(cluster.stats.forged, 0);
  const secrets = runSecrets(cluster, launcher);
  for (const m of cluster.members) {
    const environ = readFileSync(`/proc/${m.pid}/environ`, 'latin1');
    t.true(environ.includes(`SPS_CLUSTER_ID=${cluster.id}\0`), 'not the worker environment');
    t.deepEqual(secretsIn(environ, secrets), [], `partition ${m.partition}'s /proc/${m.pid}/environ`);
    const probe = await cluster.request<{ pid: number; output: string }>(m.partition, 'probe');
    t.true(probe.output.includes(`SPS_PARTITION=${m.partition}`), 'the probe read no environment');
    t.deepEqual(secretsIn(probe.output, secrets), [], `what partition ${m.partition}'s child found`);
  }
  // The control token the task derived is its attempt's: the driver's matches it.
  const { host, port } = cluster.hosts.get(1)!;
  const refused = await fetch(`http://${host}:${port}/control/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${cluster.controlToken(0)}` } });
  t.is(refused.status, 403);
  const res = await fetch(`http://${host}:${port}/control/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${cluster.controlToken(1)}` } });
  t.is(res.status, 202);
  await cluster.stop();
  t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
});

test("on Spark, a task carries its own partition's secrets only: none in the task function every executor of the stage receives", async (t) => {
  t.timeout(300_000);
  const f = (await runScript(t, 'task_secrets.py')) as { function: number[]; tasks: number[][]; read: [number, number[], number[]][] };
  t.deepEqual(f.function, [], 'partitions whose secrets the shipped task function holds');
  t.deepEqual(f.tasks, [[0], [1], [2]], "partitions whose secrets each partition's own task holds");
  t.deepEqual(f.read, [
    [0, [0], [0, 1, 2, 3]],
    [1, [1], [4, 5, 6, 7]],
    [2, [2], [8, 9, 10, 11]],
  ]);
});
