/**
 * Option `spareWorker`: a worker process started ahead, holding no partition and no secret, becomes
 * the next attempt of a partition that loses one. Real worker processes, a real nats-server; the
 * spare is found in /proc by its environment.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { unpack } from 'msgpackr';
import { Cluster } from '../src/index.js';
import { InvalidOptionError } from '../src/errors.js';
import { checksum, expectedModel, type ElasticJob, type ElasticReport } from './fixtures/elastic-server.js';
import { isAlive, secretsIn, sharedNats, waitUntil } from './helpers/harness.js';

const SERVER = new URL('./fixtures/elastic-server.ts', import.meta.url);
const nats = sharedNats();
test.after.always(() => nats.stop());

/** The fd a worker reads its secrets from (the embedded launcher's `SPS_SECRET_FD`). */
const SECRET_FD = 5;

/** Remote ports of the TCP connections process `pid` holds (its socket fds matched in /proc/net/tcp and tcp6). */
function tcpPeerPortsOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) ports.push(parseInt(cols[2]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** Pids of the spare workers of run `clusterId` running now (their environment says `SPS_SPARE=1`). */
function sparesOf(clusterId: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      if (env.includes(`SPS_CLUSTER_ID=${clusterId}`) && env.includes('SPS_SPARE=1')) found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** The one spare of the run that is not among `not` (waits for it to be started). */
async function spareOf(cluster: Cluster, not: number[] = []): Promise<number> {
  let pid: number | undefined;
  await waitUntil(() => (pid = sparesOf(cluster.id!).find((p) => !not.includes(p) && isAlive(p))) !== undefined, 60_000, 'a spare worker');
  return pid!;
}

async function spareCluster(t: ExecutionContext, partitions: number) {
  const server = await nats.get();
  const cluster = new Cluster({ server: SERVER, data: [], partitions, natsUrl: server.url, log: false, spareWorker: true });
  t.teardown(() => cluster.stop());
  return cluster;
}

function kill(cluster: Cluster, partition: number): { pid: number; attempt: number } {
  const m = cluster.members.find((x) => x.partition === partition)!;
  process.kill(m.pid, 'SIGKILL');
  return { pid: m.pid, attempt: m.attempt };
}

/** Partition `p` serving as an attempt newer than `after`; its member. */
async function servingAgain(cluster: Cluster, p: number, after: number) {
  await waitUntil(() => cluster.members.some((m) => m.partition === p && m.attempt > after && m.state === 'serving'), 60_000, `partition ${p} serving again`);
  return cluster.members.find((m) => m.partition === p)!;
}

test('spareWorker is refused where partitions are not processes of the embedded launcher', (t) => {
  t.throws(() => new Cluster({ server: SERVER, data: [], spareWorker: true, isolation: 'thread' }), { instanceOf: InvalidOptionError, message: /spareWorker/ });
  t.throws(() => new Cluster({ server: SERVER, data: [], spareWorker: true, master: 'local[2]' }), { instanceOf: InvalidOptionError, message: /spareWorker/ });
});

test.serial(
  'the spare holds no partition and no secret, becomes the new attempt of an elastic run after a SIGKILL, and stop() ends the next spare',
  async (t) => {
    const cluster = await spareCluster(t, 3);
    await cluster.start();
    const spare = await spareOf(cluster);
    t.false(
      cluster.members.some((m) => m.pid === spare),
      'the spare is no attempt',
    );
    // What it received: its environment (no partition, attempt or secret) and a secret pipe nothing was written to.
    const environ = readFileSync(`/proc/${spare}/environ`, 'latin1').split('\0');
    t.false(
      environ.some((e) => /^SPS_(PARTITION|ATTEMPT)=/.test(e)),
      'no partition or attempt in its environment',
    );
    t.deepEqual(secretsIn(environ.join('\n'), {}), [], 'no nkey seed in its environment');
    t.false(/[0-9a-f]{64}/.test(environ.join('\n')), 'no control token or registration proof in its environment');
    // Its secret channel is open (no end of file: it is still waiting) with nothing queued, and it is logged in nowhere.
    const channel = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${spare}/fd/${SECRET_FD}`));
    t.truthy(channel, 'fd 5 is its secret channel');
    const line = execFileSync('ss', ['-xn'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.split(/\s+/)[5] === channel![1]);
    t.regex(line ?? '', /^u_str\s+ESTAB\s+0\s+0\s/, 'connected, nothing queued');
    const server = await nats.get();
    t.false(tcpPeerPortsOf(spare).includes(Number(new URL(server.url).port)), 'no connection to the bus');

    const watcher = await connect({ servers: server.url });
    t.teardown(() => watcher.close());
    const holding = new Promise<void>((resolve) => {
      watcher.subscribe(`sps.${cluster.id}.app.elastic.holding`, {
        callback: (_err, msg) => {
          if ((unpack(msg.data) as ElasticReport).partition === 1) resolve();
        },
      });
    });
    await watcher.flush();
    const job: ElasticJob = { iterations: 20, commitEvery: 5, size: 1000, holds: [{ partition: 1, iteration: 12 }] };
    const run = cluster.requestAll<{ iteration: number; checksum: number; attempt: number }>('run', job, { timeoutMs: 120_000, rejoin: { timeoutMs: 60_000 } });
    await holding;
    const lost = kill(cluster, 1);
    const replies = await run;
    const member = cluster.members.find((m) => m.partition === 1)!;
    t.true(member.attempt > lost.attempt);
    t.is(member.pid, spare, 'the new attempt is the spare started before the loss');
    const want = checksum(expectedModel(3, job.size, job.iterations));
    for (const [p, r] of replies) t.like(r.ok ? r.value : r.error, { iteration: job.iterations, checksum: want }, `partition ${p}`);

    // Every partition serving again: the next spare is started; stop() ends it with the rest.
    const next = await spareOf(cluster, [spare]);
    await cluster.stop();
    t.false(isAlive(next), 'the next spare was ended by stop()');
    t.false(isAlive(spare));
    t.deepEqual(sparesOf(cluster.id!), []);
  },
);

test.serial('a spare that dies is not used: a fresh worker becomes the new attempt, and another spare is started', async (t) => {
  const cluster = await spareCluster(t, 2);
  await cluster.start();
  const spare = await spareOf(cluster);
  process.kill(spare, 'SIGKILL');
  await waitUntil(() => !isAlive(spare), 30_000, 'the spare gone');
  const lost = kill(cluster, 0);
  const member = await servingAgain(cluster, 0, lost.attempt);
  t.not(member.pid, spare);
  t.deepEqual(await cluster.request(0, 'state'), null, 'the new attempt serves');
  const next = await spareOf(cluster, [spare]);
  t.not(next, member.pid);
  await cluster.stop();
  t.false(isAlive(next));
});

test.serial('a spare is not used across runs: a run started again has its own, and the first is gone with its run', async (t) => {
  const cluster = await spareCluster(t, 2);
  await cluster.start();
  const first = await spareOf(cluster);
  const firstId = cluster.id!;
  await cluster.stop();
  t.false(isAlive(first), 'stop() ended the first run’s spare');
  await cluster.start();
  t.not(cluster.id, firstId);
  const second = await spareOf(cluster, [first]);
  const lost = kill(cluster, 1);
  const member = await servingAgain(cluster, 1, lost.attempt);
  t.is(member.pid, second, 'the new attempt is this run’s spare');
  await cluster.stop();
  t.false(isAlive(second));
});
