import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { Cluster, PartitionFailedError, StartTimeoutError } from '../src/index.js';
import { pack, PROTOCOL_VERSION } from '../src/protocol/codec.js';
import { encodeRegistration, encodeRequest, encodeState, decodeReply, decodeRegisterAck } from '../src/protocol/messages.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { isAlive, portOpen, sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

test.serial('a SIGKILLed partition is relaunched as attempt 1 and serves again; attempt 0 can no longer change anything', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: TEST_SERVER, data: { range: { end: 20 } }, partitions: 2, natsUrl: server.url, log: false }, async (cluster) => {
    const old = cluster.members[1]!;
    t.is(old.attempt, 0);
    process.kill(old.pid, 'SIGKILL');
    await waitUntil(() => cluster.members[1]?.attempt === 1 && cluster.members[1]?.state === 'serving', 30_000, 'attempt 1 of partition 1 serving');
    const fresh = cluster.members[1]!;
    t.not(fresh.pid, old.pid);
    t.false(isAlive(old.pid));
    t.like(await cluster.request(1, 'whoami'), { partition: 1, attempt: 1, pid: fresh.pid });
    t.deepEqual(
      await cluster.request(1, 'get_list'),
      Array.from({ length: 10 }, (_, i) => 10 + i),
    );

    // Late messages from attempt 0: a state report, a re-registration and a failure.
    const subjects = subjectsFor(cluster.id!);
    const intruder = await connect({ servers: server.url });
    t.teardown(() => intruder.close());
    const before = { members: cluster.members, stale: cluster.stats.stale, forged: cluster.stats.forged };
    intruder.publish(subjects.state(1), encodeState({ attempt: 0, state: 'failed', pid: old.pid, error: { code: 'X', message: 'late' } }));
    const proof = 'ab'.repeat(32);
    const ack = await intruder.request(
      subjects.register(1),
      encodeRegistration({ attempt: 0, host: '198.18.0.99', port: 1, pid: old.pid, endpoints: [], proof }),
      {
        timeout: 30_000,
      },
    );
    t.like(decodeRegisterAck(ack.subject, ack.data), {
      accepted: false,
      reason: 'attempt 0 of partition 1 was not started by the launcher (or has registered already)',
    });
    await intruder.flush();
    await waitUntil(() => cluster.stats.stale >= before.stale + 1 && cluster.stats.forged >= before.forged + 1, 5_000, 'stale and forged messages counted');
    t.deepEqual(cluster.members, before.members);

    await cluster.stop();
    // Exactly one result per partition, and partition 1's is from attempt 1.
    t.deepEqual(cluster.result().get(1), [{ partition: 1, attempt: 1, count: 10, sum: 145 }]);
    t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 0, count: 10, sum: 45 }]);
  });
});

test.serial('a partition that fails maxFailures times fails start() with its last error, leaving nothing behind', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({ server: TEST_SERVER, data: [1, 2], partitions: 2, config: { failInit: [1] }, maxFailures: 3, natsUrl: server.url, log: false });
  t.teardown(() => cluster.stop());
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.is(err!.partition, 1);
  t.is(err!.failures, 3);
  t.regex(
    err!.message,
    /Partition 1 failed 3 time\(s\), giving up\. Last error: exited with code 1: \[SPS_PARTITION_ERROR\] init refused on purpose for partition 1/,
  );
  t.is(cluster.state, 'failed');
  t.deepEqual(cluster.workerPids, []);
  const pids = cluster.members.map((m) => m.pid);
  for (const pid of pids) t.false(isAlive(pid));
});

test.serial('the start timeout names the partitions that are not serving and stops the rest', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({
    server: TEST_SERVER,
    data: [1, 2, 3],
    partitions: 3,
    config: { hangInit: [2] },
    startTimeoutMs: 10_000,
    natsUrl: server.url,
    log: false,
  });
  t.teardown(() => cluster.stop());
  let settled = false;
  const starting = cluster.start().finally(() => (settled = true));
  // The event the timeout must come after: partitions 0 and 1 serving, with their workers (and
  // partition 2's) seen. Awaited, so what follows holds however slow the machine.
  let pids: number[] = [];
  await waitUntil(
    () => {
      pids = [...new Set([...pids, ...cluster.workerPids])];
      return settled || (pids.length === 3 && cluster.members.filter((m) => m.state === 'serving').length === 2);
    },
    60_000,
    'partitions 0 and 1 serving',
  );
  t.false(settled, 'the start ended before partitions 0 and 1 were serving');
  const ports = cluster.members.map((m) => m.port!);
  const err = await t.throwsAsync(starting, { instanceOf: StartTimeoutError });
  t.deepEqual(err!.missing, [2]);
  t.regex(err!.message, /within 10000 ms \(startTimeoutMs\): partition\(s\) 2 not serving \(partition 2: never registered/);
  for (const pid of pids) t.false(isAlive(pid), `worker ${pid} left running`);
  t.is(ports.length, 2);
  for (const port of ports) t.false(await portOpen(port));
});

test.serial('shutdown over HTTP without the token, or with a wrong one, is refused', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: TEST_SERVER, data: [1], partitions: 1, natsUrl: server.url, log: false }, async (cluster) => {
    const { host, port } = cluster.hosts.get(0)!;
    const url = `http://${host}:${port}/control/shutdown`;
    const none = await fetch(url, { method: 'POST' });
    t.is(none.status, 403);
    t.like(await none.json(), { error: { code: 'SPS_BAD_TOKEN' } });
    const wrong = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer not-the-token' } });
    t.is(wrong.status, 403);
    t.deepEqual(await cluster.request(0, 'get_list'), [1]);
    t.is(cluster.members[0]!.state, 'serving');
    t.is((await fetch(`http://${host}:${port}/control/health`)).status, 200);
  });
});

test.serial('malformed messages on the cluster subjects are ignored and counted; nothing crashes', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, log: false }, async (cluster) => {
    const s = subjectsFor(cluster.id!);
    const intruder = await connect({ servers: server.url });
    t.teardown(() => intruder.close());
    const garbage = [Buffer.from('not msgpack at all'), pack({ v: 99, t: 'state' }), pack({ v: PROTOCOL_VERSION, t: 'state', attempt: 'x' }), pack([1, 2, 3])];
    for (const g of garbage) {
      intruder.publish(s.state(0), g);
      intruder.publish(s.register(1), g);
      intruder.publish(s.members, g);
    }
    // Well-formed, but for partitions the cluster does not have: counted, and nothing is kept for them.
    for (const p of ['2', '99', '007', 'x']) intruder.publish(`${s.prefix}.ctl.state.${p}`, encodeState({ attempt: 0, state: 'failed', pid: 1 }));
    await intruder.flush();
    await waitUntil(() => cluster.stats.malformed >= garbage.length * 2 + 4, 5_000, 'malformed messages counted');
    t.deepEqual(
      cluster.members.map((m) => m.partition),
      [0, 1],
    );
    // Garbage to an endpoint gets an error reply, and the endpoint keeps working.
    const member = cluster.members[0]!;
    const reply = decodeReply('r', (await intruder.request(s.endpoint(0, member.attempt, 'sum'), Buffer.from('garbage'), { timeout: 30_000 })).data);
    t.like(reply, { ok: false, error: { code: 'SPS_MALFORMED_MESSAGE' } });
    const good = decodeReply('r', (await intruder.request(s.endpoint(0, member.attempt, 'sum'), encodeRequest(null), { timeout: 30_000 })).data);
    t.deepEqual(good, { ok: true, body: 3 });
    t.deepEqual(
      cluster.members.map((m) => m.state),
      ['serving', 'serving'],
    );
    t.deepEqual(await cluster.request(1, 'get_list'), [3, 4]);
    await cluster.stop();
    t.is(cluster.state, 'stopped');
    t.is(cluster.result().size, 2);
  });
});

test.serial('an advertiseHost function that throws refuses the registration with its message, not as a malformed message', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({
    server: TEST_SERVER,
    data: [1, 2],
    partitions: 2,
    maxFailures: 1,
    advertiseHost: (p) => {
      if (p === 1) throw new Error('no address known for partition 1');
      return '127.0.0.1';
    },
    natsUrl: server.url,
    log: false,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.is(err!.partition, 1);
  t.regex(err!.message, /registration refused: option advertiseHost threw for partition 1 .*: no address known for partition 1/);
  t.is(cluster.stats.malformed, 0);
});
