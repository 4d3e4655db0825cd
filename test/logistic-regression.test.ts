import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { accuracy, progressSubject, syntheticRows, trainWithRetry } from '../examples/07-logistic-regression.js';
import { sparkSubmit } from '../benchmarks/lib/spark.js';
import { SMALL_SPARK_CONF, testLog } from './helpers/spark-harness.js';
import { sharedNats } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

test('logistic regression on Spark local[2] in barrier mode: a worker killed mid-training, the group restarts, training starts again and matches MLlib within 1% accuracy', async (t) => {
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
  await withCluster(
    t,
    {
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
    },
    async (cluster) => {
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

      const retries: string[] = [];
      const model = await trainWithRetry(cluster, { iterations: 1500, learningRate: 1 }, { attempts: 5, onRetry: (why) => retries.push(why) });
      t.true(killed, 'training was under way when the worker was killed');
      t.true(retries.length >= 1, 'training started again');
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
      t.log(`accuracy: partition servers ${(ours * 100).toFixed(2)}%, MLlib ${(mllib.accuracy * 100).toFixed(2)}%; retried after: ${retries.join(' / ')}`);
      t.true(Math.abs(ours - mllib.accuracy) <= 0.01, `ours ${ours}, MLlib ${mllib.accuracy}`);
    },
  );
});
