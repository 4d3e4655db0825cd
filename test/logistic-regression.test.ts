import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accuracy, syntheticRows, trainOnSpark } from '../examples/logistic-regression.js';
import { sparkSubmit } from '../benchmarks/lib/spark.js';
import { SMALL_SPARK_CONF, testLog } from './helpers/spark-harness.js';

test('the logistic-regression example trains on Spark local[2] with allReduce and matches MLlib LogisticRegression within 1% accuracy', async (t) => {
  const features = ['f0', 'f1', 'f2', 'f3', 'f4'];
  const rows = syntheticRows(4000, features.length, 7);
  const dir = mkdtempSync(join(tmpdir(), 'sps-logreg-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'rows.json');
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));

  // Both trainers at once, each in its own Spark application on local[2]: the wait is mostly JVM start.
  const [model, { out: mllib }] = await Promise.all([
    trainOnSpark({
      master: 'local[2]',
      sparkConf: SMALL_SPARK_CONF,
      log: testLog,
      path,
      features,
      partitions: 2,
      request: { iterations: 150, learningRate: 1 },
    }),
    sparkSubmit<{ accuracy: number }>('mllib_logistic_regression.py', 'local[2]', [path, features.join(','), 100, 2], 300_000),
  ]);
  t.is(model.rows, rows.length, 'every row took part');
  t.true(model.losses.at(-1)! < model.losses[0]!, 'the loss went down');
  const ours = accuracy(model, rows, { features, label: 'label' });
  t.log(`accuracy: partition servers ${(ours * 100).toFixed(2)}%, MLlib ${(mllib.accuracy * 100).toFixed(2)}%`);
  t.true(Math.abs(ours - mllib.accuracy) <= 0.01, `ours ${ours}, MLlib ${mllib.accuracy}`);
});
