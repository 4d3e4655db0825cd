/**
 * Structured logs: the default logger writes JSON lines with `cluster`, `partition` and `attempt`
 * for the driver's and the workers' records, never a secret; a user's pino-compatible logger gets
 * every record through `child` bindings.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Cluster } from '../src/index.js';
import { secretsIn, sharedNats, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

type Rec = Record<string, unknown>;

test.serial('without a TTY, the driver and its workers log JSON lines with cluster, partition and attempt, and no secret', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', new URL('./fixtures/log-driver.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 0, err);
  const run = JSON.parse(out.trim()) as { id: string; token: string; controlToken: string; seed: string };
  const lines = err.split('\n').filter((l) => l !== '');
  t.true(lines.length > 0);
  const records = lines.map((l) => JSON.parse(l) as Rec); // every line is JSON
  for (const r of records) t.is(typeof r.level, 'number');
  const p0 = records.filter((r) => r.cluster === run.id && r.partition === 0 && r.attempt === 0);
  t.like(
    p0.find((r) => String(r.msg).startsWith('plain line from')),
    { level: 30, msg: 'plain line from {"partition":0}' },
  );
  t.like(
    p0.find((r) => r.msg === 'structured record'),
    { level: 40, key: 'v', n: 2 },
  );
  t.like(
    p0.find((r) => r.msg === 'raw output line'),
    { level: 30, stream: 'output' },
  );
  // The worker's own pid is kept apart from the driver's.
  t.is(typeof p0[0]!.workerPid, 'number');
  t.not(p0[0]!.workerPid, p0[0]!.pid);
  t.deepEqual(secretsIn(err, { token: run.token, 'control token': run.controlToken, 'client seed': run.seed }), []);
});

test.serial('a user’s pino logger gets the driver’s and the workers’ records under child bindings', async (t) => {
  const server = await nats.get();
  const records: Rec[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) records.push(JSON.parse(l) as Rec);
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, logger }, async (cluster) => {
    t.is(await cluster.request(1, 'log_things'), 'logged');
    await waitUntil(() => records.some((r) => r.msg === 'raw output line' && r.partition === 1), 10_000, 'partition 1’s output');
    t.like(
      records.find((r) => r.msg === 'structured record'),
      { cluster: cluster.id, partition: 1, attempt: 0, level: 40, key: 'v' },
    );
    // A driver-side record: the launcher's note on a killed attempt, bound to the attempt it launched.
    process.kill(cluster.members[0]!.pid, 'SIGKILL');
    await waitUntil(() => cluster.members[0]?.attempt === 1 && cluster.members[0].state === 'serving', 30_000, 'attempt 1 serving');
    t.like(
      records.find((r) => String(r.msg).startsWith('attempt failed: killed by SIGKILL')),
      { cluster: cluster.id, partition: 0, attempt: 0, level: 40 },
    );
    await cluster.stop();
    t.deepEqual(secretsIn(JSON.stringify(records), { token: cluster.token }), []);
    // Nothing a worker logged names another partition than the one its launcher bound.
    for (const r of records.filter((x) => x.partition !== undefined)) t.true(r.partition === 0 || r.partition === 1);
  });
});

test.serial('any object with debug/info/warn/error/child is a logger; a bad one is refused naming the option', (t) => {
  const drop = (): void => {};
  const plain = { debug: drop, info: drop, warn: drop, error: drop, child: () => plain };
  t.notThrows(() => new Cluster({ server: TEST_SERVER, logger: plain }));
  t.throws(() => new Cluster({ server: TEST_SERVER, logger: { info: drop } as never }), { message: /"logger".*no debug, warn, error, child/ });
  t.throws(() => new Cluster({ server: TEST_SERVER, logLevel: 'loud' as never }), { message: /"logLevel"/ });
});
