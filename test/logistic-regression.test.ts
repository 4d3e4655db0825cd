import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { unpack } from 'msgpackr';
import { Cluster } from '../src/index.js';
import { accuracy, progressSubject, syntheticRows, trainElastic, type LogisticModel } from '../examples/07-logistic-regression.js';
import { sparkSubmit } from '../benchmarks/lib/spark.js';
import { SMALL_SPARK_CONF, testLog } from './helpers/spark-harness.js';
import { sharedNats } from './helpers/harness.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

test('logistic regression on Spark local[2] in barrier mode: a worker killed mid-training, the group restarts, every new attempt starts from the initial state and matches MLlib within 1% accuracy', async (t) => {
  const features = ['f0', 'f1', 'f2', 'f3', 'f4'];
  const rows = syntheticRows(4000, features.length, 7);
  const dir = mkdtempSync(join(tmpdir(), 'sps-logreg-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'rows.json');
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));

  // MLlib in its own Spark application, at the same time (the wait is mostly JVM start).
  const mllibRun = sparkSubmit<{ accuracy: number }>('mllib_logistic_regression.py', 'local[2]', [path, features.join(','), 100, 2], 300_000);
  mllibRun.catch(() => {});

  // A NATS server of the test's own, so it can hear partition 0's progress reports.
  const server = await nats.get();
  const cluster = new Cluster({
    server: new URL('../examples/07-logistic-regression.ts', import.meta.url),
    master: 'local[2]',
    sparkConf: SMALL_SPARK_CONF,
    barrier: true,
    natsUrl: server.url,
    source: { json: path },
    partitions: 2,
    config: { features, label: 'label' },
    startTimeoutMs: 180_000,
    log: testLog,
  });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const firstAttempts = cluster.members.map((m) => m.attempt);

  // Kill partition 1's worker as soon as partition 0 reports its first iteration.
  const watcher = await connect({ servers: server.url });
  t.teardown(() => watcher.close());
  let killed = false;
  watcher.subscribe(progressSubject(cluster.id!), {
    callback: () => {
      if (killed) return;
      killed = true;
      process.kill(cluster.members.find((m) => m.partition === 1)!.pid, 'SIGKILL');
    },
  });
  await watcher.flush();

  const retries: number[] = [];
  const model = await trainElastic(cluster, { iterations: 1500, learningRate: 1 }, { onRejoin: (p) => retries.push(p) });
  t.true(killed, 'training was under way when the worker was killed');
  t.true(retries.length >= 1, 'training started again');
  // Barrier mode: no survivor kept a commit, so the whole run was done again from iteration 0.
  t.is(model.losses.length, 1500);
  t.true(
    cluster.members.every((m, p) => m.attempt > firstAttempts[p]!),
    `Spark restarted the whole group: attempts ${firstAttempts.join(',')} → ${cluster.members.map((m) => m.attempt).join(',')}`,
  );
  t.is(model.rows, rows.length, 'every row took part');
  t.true(model.losses.at(-1)! < model.losses[0]!, 'the loss went down');
  await cluster.stop();
  // The driver reads the model from the results too.
  t.deepEqual((cluster.result().get(0) as { weights: number[] }[])[0]!.weights, model.weights);

  const ours = accuracy(model, rows, { features, label: 'label' });
  const mllib = (await mllibRun).out;
  t.log(`accuracy: partition servers ${(ours * 100).toFixed(2)}%, MLlib ${(mllib.accuracy * 100).toFixed(2)}%; partitions asked again: ${retries.join(', ')}`);
  t.true(Math.abs(ours - mllib.accuracy) <= 0.01, `ours ${ours}, MLlib ${mllib.accuracy}`);
});

test('logistic regression with elastic state: one partition SIGKILLed mid-training costs at most one commit interval and ends with the fault-free model', async (t) => {
  const features = ['f0', 'f1', 'f2', 'f3', 'f4'];
  const rows = syntheticRows(6000, features.length, 11);
  const server = await nats.get();
  const cluster = new Cluster({
    server: new URL('../examples/07-logistic-regression.ts', import.meta.url),
    data: rows,
    partitions: 3,
    natsUrl: server.url,
    config: { features, label: 'label' },
    log: false,
  });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const request = { iterations: 300, learningRate: 1, commitEvery: 10 };
  const faultFree = await trainElastic(cluster, request);

  // Kill partition 1 once partition 0 reports iteration 150.
  const watcher = await connect({ servers: server.url });
  t.teardown(() => watcher.close());
  let killedAt: number | undefined;
  watcher.subscribe(progressSubject(cluster.id!), {
    callback: (_err, msg) => {
      const { iteration } = unpack(msg.data) as { iteration: number };
      if (killedAt !== undefined || iteration < 150) return;
      killedAt = iteration;
      process.kill(cluster.members.find((m) => m.partition === 1)!.pid, 'SIGKILL');
    },
  });
  await watcher.flush();
  const rejoined: number[] = [];
  const model: LogisticModel = await trainElastic(cluster, request, { onRejoin: (p) => rejoined.push(p) });
  t.deepEqual(rejoined, [1], 'only partition 1 was asked again');
  t.true(killedAt !== undefined);
  t.is(faultFree.steps, 300);
  // Back to the last commit: at most one commit interval (and the step under way) computed again.
  t.true(model.steps > 300 && model.steps <= 300 + 10 + 1, `partition 0 computed ${model.steps} steps`);
  // The restore gives every partition the same bits it had at the commit: the model is the fault-free one, exactly.
  t.deepEqual(model.weights, faultFree.weights);
  t.is(model.bias, faultFree.bias);
  t.deepEqual(model.losses, faultFree.losses);
  const ours = accuracy(model, rows, { features, label: 'label' });
  t.log(`killed at iteration ${killedAt}; partition 0 computed ${model.steps} steps; accuracy ${(ours * 100).toFixed(2)}% with and without the fault`);
});
