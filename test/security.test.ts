/**
 * The bus trusts no stranger: the private nats-server admits only the run's own identities, each
 * limited to its role's subjects, so a stolen partition credential cannot give orders, speak for
 * another partition, or make the driver signal a process; client credentials may only query; TLS
 * refuses plaintext. Everything runs against a real nats-server and real worker processes.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { Cluster, StopTimeoutError } from '../src/index.js';
import { encode, pack, PROTOCOL_VERSION } from '../src/protocol/codec.js';
import { decodeMembers, decodeReply, encodeRegistration, encodeRequest, encodeState, decodeRegisterAck } from '../src/protocol/messages.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { findNatsServer } from '../src/transport/nats-server.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { as } from './helpers/bus-identity.js';
import { isAlive, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { withCluster, testCluster } from './helpers/with-cluster.js';

const run = promisify(execFile);

async function startCaptured(
  t: import('ava').ExecutionContext,
  extra: Record<string, unknown> = {},
): Promise<{ cluster: Cluster; launcher: CapturingLauncher }> {
  const launcher = await CapturingLauncher.create([1, 2, 3, 4], 2);
  const cluster = testCluster(t, { server: TEST_SERVER, partitions: 2, launcher, log: false, ...extra });
  await cluster.start();
  return { cluster, launcher };
}

test("a connection without credentials, or with a stranger's nkey, is refused", async (t) => {
  const { cluster } = await startCaptured(t);
  await t.throwsAsync(connect({ servers: cluster.natsUrl!, reconnect: false }), { message: /Authorization Violation/i });
  const { createUser } = await import('@nats-io/nkeys');
  const stranger = new TextDecoder().decode(createUser().getSeed());
  await t.throwsAsync(connectBus({ url: cluster.natsUrl!, auth: { nkeySeed: stranger } }, 'stranger'), { message: /Authorization Violation/i });
  t.deepEqual(await cluster.request(0, 'sum'), 3);
});

test("with partition 1's credentials, the server refuses every order and every other identity's subject", async (t) => {
  const { cluster, launcher } = await startCaptured(t);
  const s = subjectsFor(cluster.id!);
  const plan = launcher.plan!;
  // The driver's view of the bus: nothing the intruder sends below may reach any subscriber.
  const watcher = await as(plan.driverBus, 'watcher');
  t.teardown(() => watcher.nc.close());
  const seen: string[] = [];
  watcher.nc.subscribe(`${s.prefix}.>`, { callback: (_e, m) => void seen.push(m.subject) });
  await watcher.nc.flush();

  const p1 = await as(plan.busFor(1), 'intruder-p1');
  t.teardown(() => p1.nc.close());
  const forbidden = [
    s.shutdown,
    s.members,
    s.spark('submit'),
    s.spark('job_finished'),
    s.spark('result'),
    s.spark('cancel'),
    s.register(0),
    s.state(0),
    // Collectives: speaking as partition 0, to one partition or to all.
    s.coll(0, 0),
    s.coll('all', 0),
    'sps.other-cluster.ctl.shutdown',
  ];
  for (const subject of forbidden) p1.nc.publish(subject, encode('shutdown', {}));
  // Another partition's endpoints, the driver's replies, and everything else are not to be read.
  // Nor what peers send each other in collectives.
  // Nor partition 0's stable subjects, nor the discovery requests of other services.
  const unreadable = [
    s.endpoints(0, '*'),
    s.stable(0, '*'),
    s.coll(0, '*'),
    s.coll('*', 2),
    '$SRV.INFO.other-service',
    `${s.inbox('driver')}.>`,
    `${s.prefix}.>`,
    '>',
  ];
  for (const subject of unreadable) p1.nc.subscribe(subject);
  await p1.nc.flush();
  await waitUntil(() => p1.refused.length >= forbidden.length + unreadable.length, 10_000, 'every violation reported');
  for (const subject of forbidden) t.true(p1.refused.includes(`publish ${subject}`), `publish ${subject} was not refused: ${p1.refused.join('; ')}`);
  for (const subject of unreadable) t.true(p1.refused.includes(`subscription ${subject}`), `subscription ${subject} was not refused`);
  t.true(p1.refused.includes(`subscription ${s.coll(0, '*')}`));
  // A round trip on the watcher after the intruder's flush: had anything passed, it would be here.
  await watcher.nc.flush();
  t.deepEqual(
    seen.filter((x) => forbidden.includes(x)),
    [],
  );
  t.deepEqual(
    cluster.members.map((m) => m.state),
    ['serving', 'serving'],
  );

  // What partition 1 may do: call a peer, and report on its own subjects (garbage there is counted).
  t.like(decodeReply('r', (await p1.nc.request(s.endpoint(0, 0, 'sum'), encodeRequest(null), { timeout: 30_000 })).data), { ok: true, body: 3 });
  const before = cluster.stats.malformed;
  p1.nc.publish(s.state(1), pack({ v: PROTOCOL_VERSION, t: 'state', attempt: 'x' }));
  p1.nc.publish(s.state(1), Buffer.alloc(1000, 7));
  await p1.nc.flush();
  await waitUntil(() => cluster.stats.malformed >= before + 2, 10_000, 'malformed reports counted');
  t.deepEqual(
    cluster.members.map((m) => m.state),
    ['serving', 'serving'],
  );
  await cluster.stop();
  t.is(cluster.result().size, 2);
});

test('a forged registration cannot make the driver signal a process it did not start', async (t) => {
  const { cluster, launcher } = await startCaptured(t, { stopTimeoutMs: 3000 });
  const s = subjectsFor(cluster.id!);
  const bystander = spawn('sleep', ['120'], { stdio: 'ignore' });
  t.teardown(() => bystander.kill('SIGKILL'));
  const p1 = await as(launcher.plan!.busFor(1), 'intruder-p1');
  t.teardown(() => p1.nc.close());
  // An attempt the launcher started (its proof) may register; claiming someone else's pid buys nothing.
  const proof = launcher.plan!.secrets.attempt(1, 99).proof;
  const ack = decodeRegisterAck(
    'a',
    (
      await p1.nc.request(s.register(1), encodeRegistration({ attempt: 99, host: '127.0.0.1', port: null, pid: bystander.pid!, endpoints: [], proof }), {
        timeout: 30_000,
      })
    ).data,
  );
  t.true(ack.accepted);
  p1.nc.publish(s.state(1), encodeState({ attempt: 99, state: 'serving', pid: bystander.pid! }));
  await p1.nc.flush();
  await waitUntil(() => cluster.members[1]?.pid === bystander.pid, 10_000, 'forged member visible');
  // Attempt 99 never returns a result: stop() times out naming partition 1, and kills only its own children.
  const err = await t.throwsAsync(cluster.stop(), { instanceOf: StopTimeoutError });
  t.deepEqual(err!.missing, [1]);
  t.true(isAlive(bystander.pid!), 'the driver signalled a process it did not start');
});

test('client credentials may call endpoints and read the membership, and nothing else', async (t) => {
  const { cluster } = await startCaptured(t);
  const s = subjectsFor(cluster.id!);
  const access = cluster.credentials('client');
  t.is(access.url, cluster.natsUrl!);
  const client = await as(access, 'client');
  t.teardown(() => client.nc.close());
  const view = decodeMembers('m', (await client.nc.request(s.membersGet, encode('members-get', {}), { timeout: 30_000 })).data);
  t.deepEqual(
    view.members.map((m) => [m.partition, m.state]),
    [
      [0, 'serving'],
      [1, 'serving'],
    ],
  );
  t.like(decodeReply('r', (await client.nc.request(s.endpoint(1, 0, 'get_list'), encodeRequest(null), { timeout: 30_000 })).data), { ok: true, body: [3, 4] });
  // The stable subject (no attempt) reaches the current attempt.
  t.like(decodeReply('r', (await client.nc.request(s.stable(1, 'sum'), encodeRequest(null), { timeout: 30_000 })).data), { ok: true, body: 7 });
  const forbidden = [s.shutdown, s.register(0), s.state(1), s.members, '$SRV.INFO.other-service'];
  for (const subject of forbidden) client.nc.publish(subject, encode('shutdown', {}));
  // A client may neither answer endpoints (on either subject) nor discovery requests.
  const unreadable = [s.endpoints(0, '*'), s.stable(0, '*'), `$SRV.PING.${s.service}`];
  for (const subject of unreadable) client.nc.subscribe(subject);
  await client.nc.flush();
  await waitUntil(() => client.refused.length >= forbidden.length + unreadable.length, 10_000, 'violations reported');
  for (const subject of forbidden) t.true(client.refused.includes(`publish ${subject}`), `publish ${subject} was not refused`);
  for (const subject of unreadable) t.true(client.refused.includes(`subscription ${subject}`), `subscription ${subject} was not refused`);
  t.deepEqual(
    cluster.members.map((m) => m.state),
    ['serving', 'serving'],
  );
  t.throws(() => cluster.credentials('driver' as 'client'), { code: 'SPS_CLUSTER_STATE' });
});

test('the Python bus client (nats-py) queries every partition with client credentials and cannot shut them down', async (t) => {
  const { cluster } = await startCaptured(t);
  const python = fileURLToPath(new URL('../.venv/bin/python', import.meta.url));
  const script = fileURLToPath(new URL('../examples/bus-client.py', import.meta.url));
  const { stdout } = await run(python, [script, 'sum'], {
    env: { ...process.env, SPS_CLIENT_BUS: JSON.stringify(cluster.credentials('client')), SPS_CLUSTER_ID: cluster.id! },
  });
  const out = JSON.parse(stdout) as { answers: Record<string, unknown>; refused: string[] };
  t.deepEqual(out.answers, { 0: 3, 1: 7 });
  t.regex(out.refused.join('\n'), /permissions violation for publish to "sps\.[^"]+\.ctl\.shutdown"/i);
  t.deepEqual(await cluster.request(1, 'sum'), 7);
  t.deepEqual(
    cluster.members.map((m) => m.state),
    ['serving', 'serving'],
  );
});

test('over TLS: the cluster works end to end, its secrets verify the server, and a plaintext client is refused', async (t) => {
  const { cluster } = await startCaptured(t, { tls: true });
  t.regex(cluster.natsUrl!, /^tls:\/\//);
  t.deepEqual(await cluster.request(1, 'get_list'), [3, 4]);
  const { host, port } = cluster.hosts.get(0)!;
  t.is(await (await fetch(`http://${host}:${port}/app/get_list`)).text(), '1,2');
  // A client that does not trust the run's CA cannot connect, even with the right nkey.
  const access = cluster.credentials('client');
  t.truthy(access.tls?.ca);
  await t.throwsAsync(connectBus({ ...access, tls: {} }, 'untrusting'), { message: /certificate/i });
  // Plaintext: the server wants a TLS handshake and never answers a plaintext PING.
  const port0 = Number(new URL(cluster.natsUrl!).port);
  const reply = await new Promise<string>((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port: port0 });
    let text = '';
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('INFO')) sock.write('CONNECT {"verbose":false}\r\nPING\r\n');
    });
    sock.on('close', () => resolve(text));
    sock.on('error', () => resolve(text));
  });
  t.regex(reply, /"tls_required":true/);
  t.notRegex(reply, /PONG/);
  await cluster.stop();
  t.is(cluster.result().size, 2);
});

test('on a NATS server you run, natsAuth logs the driver and every worker in (token here), and nothing runs without it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sps-token-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const token = randomBytes(16).toString('hex');
  const config = join(dir, 'nats.conf');
  await writeFile(config, JSON.stringify({ listen: '127.0.0.1:-1', authorization: { token } }), { mode: 0o600 });
  const server = spawn(findNatsServer(), ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => server.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    server.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /Listening for client connections on \S*:(\d+)/.exec(seen);
      if (m && seen.includes('Server is ready')) resolve(Number(m[1]));
    });
    server.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${seen}`)));
  });
  const url = `nats://127.0.0.1:${port}`;
  await t.throwsAsync(connect({ servers: url, reconnect: false }), { message: /Authorization Violation/i });
  await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: url, natsAuth: { token }, log: false }, async (cluster) => {
    t.is(await cluster.request(1, 'sum'), 7);
    t.throws(() => cluster.credentials('client'), { code: 'SPS_CLUSTER_STATE', message: /operator makes users/ });
    await cluster.stop();
    t.deepEqual([...cluster.result().keys()].sort(), [0, 1]);
  });
});
