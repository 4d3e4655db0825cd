/**
 * The numbered examples, each run as a user runs it (its `main()`, in-process here so no extra
 * TypeScript loader starts), checked by what it returns. Example 5 (a Python client in JSON mode)
 * runs in micro-service.test.ts, example 7 (logistic regression) in logistic-regression.test.ts,
 * 8 and 9 (PySpark, the notebook) in pyspark-package.test.ts.
 */
import test from 'ava';
import { main as embedded } from '../examples/01-embedded.js';
import { main as spark } from '../examples/02-spark.js';
import { main as httpWebSocket } from '../examples/03-http-websocket.js';
import { main as peerToPeer } from '../examples/04-peer-to-peer.js';
import { main as dashboard } from '../examples/06-dashboard.js';
import { main as liveView } from '../examples/10-live-view.js';
import { fileURLToPath } from 'node:url';
import { SMALL_SPARK_CONF, testLog } from './helpers/spark-harness.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('01-embedded: both partitions serve their slice over HTTP and NATS, and return their sums', async (t) => {
  const lines: string[] = [];
  const { overHttp, overNats, result } = await embedded((l) => lines.push(l));
  t.deepEqual(overHttp, range(0, 500));
  t.deepEqual(overNats, overHttp);
  t.deepEqual(
    [...result].map(([p, r]) => [p, r]),
    [
      [0, [{ partition: 0, count: 500, sum: 124_750 }]],
      [1, [{ partition: 1, count: 500, sum: 374_750 }]],
    ],
  );
  t.true(lines.includes('same list both ways: true'));
});

test('02-spark: on local[2], requestAll sums every partition and the results are a Spark dataset', async (t) => {
  t.timeout(240_000);
  const { total, records } = await spark('local[2]', () => {}, SMALL_SPARK_CONF, testLog);
  const squares = range(0, 100).reduce((a, i) => a + i * i, 0);
  t.is(total, squares);
  t.is(records.length, 2);
  t.is(
    (records as { sum: number }[]).reduce((a, r) => a + r.sum, 0),
    squares,
  );
  t.is(
    (records as { rows: number }[]).reduce((a, r) => a + r.rows, 0),
    100,
  );
});

test('03-http-websocket: a JSON route filters each partition, and its WebSocket streams every row in batches', async (t) => {
  const { above, batches } = await httpWebSocket(() => {});
  t.deepEqual(above[0], range(16, 20));
  t.deepEqual(above[1], range(20, 40));
  t.deepEqual(batches[0]!.flat(), range(0, 20));
  t.deepEqual(batches[1]!.flat(), range(20, 40));
  t.deepEqual(
    batches[0]!.map((b) => b.length),
    [8, 8, 4],
  );
});

test('04-peer-to-peer: an allReduce gives every partition the global mean and variance; each reads its neighbour directly', async (t) => {
  const { stats } = await peerToPeer(() => {});
  const values = range(0, 1000);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + b * b, 0) / values.length - mean * mean;
  t.is(stats.length, 3);
  for (const s of stats) {
    t.is(s.count, 1000);
    t.is(s.mean, mean);
    t.true(Math.abs(s.variance - variance) < 1e-6);
  }
  // Partitions of range(1000) in 3: 0..332, 333..665, 666..999; each asked the next one.
  t.deepEqual(
    stats.map((s) => s.neighbourSample),
    [
      [333, 334, 335],
      [666, 667, 668],
      [0, 1, 2],
    ],
  );
});

test('06-dashboard: the dashboard opens on the running cluster and its snapshot shows every partition serving', async (t) => {
  const lines: string[] = [];
  const { snapshot } = await dashboard((l) => lines.push(l), true);
  t.regex(lines[0]!, /^dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=/);
  t.deepEqual(
    snapshot.partitions.map((p) => [p.partition, p.state]),
    [
      [0, 'serving'],
      [1, 'serving'],
      [2, 'serving'],
    ],
  );
});

test('10-live-view: a Python publisher’s price changes reach the partition owning each SKU, in order, while reads by key see them', async (t) => {
  t.timeout(300_000);
  const python = fileURLToPath(new URL('../.venv/bin/python', import.meta.url));
  const { final, seen } = await liveView('local[2]', python, () => {}, SMALL_SPARK_CONF, testLog);
  t.deepEqual(final, Object.fromEntries(range(0, 100).map((k) => [`sku-${k}`, 1000 + 900 + k])));
  // sku-7's prices as read meanwhile: its table price, then its changes (1000 + i, i ≡ 7 mod 100), never going back.
  t.true(seen.length > 0);
  t.true(
    seen.every((p) => p === 7 || (p >= 1007 && (p - 1000) % 100 === 7)),
    JSON.stringify(seen.slice(0, 20)),
  );
  t.true(
    seen.every((p, i) => i === 0 || p >= seen[i - 1]!),
    'reads never see an older price after a newer one',
  );
});
