import test from 'ava';
import { Cluster, partitionOfKey, type SparkApplication, type SparkSource } from '../src/index.js';
import { startApp, testLog } from './helpers/spark-harness.js';
import type { KeyedRow } from './fixtures/keyed-server.js';

const KEYED_SERVER = new URL('./fixtures/keyed-server.ts', import.meta.url);
let app: SparkApplication | undefined;

test.before(async () => {
  app = await startApp('local[2,4]');
});

test.after.always(async () => {
  await app?.close();
});

/** A keyed cluster on the shared application; stopped by the test's teardown also when it fails. */
function keyed(t: { teardown(fn: () => unknown): void }, source: SparkSource, partitionBy: string): Cluster<KeyedRow, unknown, KeyedRow> {
  const cluster = new Cluster<KeyedRow, unknown, KeyedRow>({
    server: KEYED_SERVER,
    partitions: 2,
    spark: app,
    source,
    partitionBy,
    log: testLog,
    startTimeoutMs: 120_000,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  return cluster;
}

const ROWS: KeyedRow[] = Array.from({ length: 30 }, (_, i) => ({ id: i % 2 ? `user-${i}` : i * 1_000_003, v: i }));

test.serial('Spark places in-memory rows by key as the library does; requestByKey reaches the owner', async (t) => {
  const cluster = keyed(t, { rows: ROWS }, 'id');
  await cluster.start();
  for (const r of ROWS.slice(0, 6)) {
    t.deepEqual(await cluster.requestByKey(r.id, 'owner', { key: r.id }), { partition: cluster.partitionOf(r.id), has: true }, String(r.id));
  }
  await cluster.stop();
  const placed = cluster.result();
  t.is([...placed.values()].flat().length, ROWS.length);
  t.true(
    [...placed.values()].every((rows) => rows.length > 0),
    'both partitions hold keys',
  );
  for (const [p, rows] of placed) for (const r of rows) t.is(partitionOfKey(r.id, 2), p, `row ${r.v}`);
});

test.serial('Spark places a DataFrame (SQL) by a long and by a string column as the library does', async (t) => {
  for (const [query, column] of [
    ['SELECT id * 7919 AS id, id AS v FROM range(40)', 'id'],
    ["SELECT concat('ключ-', id) AS id, id AS v FROM range(40)", 'id'],
  ] as const) {
    const cluster = keyed(t, { sql: query }, column);
    await cluster.start();
    const first = query.includes('ключ') ? 'ключ-3' : 3 * 7919;
    t.deepEqual(await cluster.requestByKey(first, 'owner', { key: first }), { partition: cluster.partitionOf(first), has: true });
    await cluster.stop();
    const placed = cluster.result();
    t.is([...placed.values()].flat().length, 40, query);
    for (const [p, rows] of placed) for (const r of rows) t.is(partitionOfKey(r.id, 2), p, `${query}: row ${r.v}`);
  }
});

test.serial('Spark partitionBy naming a missing column or field is refused, naming it', async (t) => {
  const column = keyed(t, { sql: 'SELECT id FROM range(4)' }, 'nope');
  await t.throwsAsync(column.start(), { message: /partitionBy: the source has no column 'nope' \(its columns: id\)/ });
  const field = keyed(t, { rows: [{ id: 1 }, { other: 2 }] }, 'id');
  await t.throwsAsync(field.start(), { message: /partitionBy: row 1 has no field 'id'/ });
  // A null in the column is found by the Spark task placing the rows: it names its source partition and row.
  const nulls = keyed(t, { sql: 'SELECT CASE WHEN id = 5 THEN NULL ELSE id END AS id FROM range(0, 8, 1, 2)' }, 'id');
  await t.throwsAsync(nulls.start(), {
    message: /partitionBy: source partition 1, row 1, field 'id': a key must be a string or an integer, got NoneType None/,
  });
});
