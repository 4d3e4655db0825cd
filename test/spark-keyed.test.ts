import test from 'ava';
import { Cluster, partitionOfKey, type SparkApplication, type SparkSource } from '../src/index.js';
import { startApp, testLog } from './helpers/spark-harness.js';
import type { KeyedRow } from './fixtures/keyed-server.js';
import type { AmountRow } from './fixtures/updates-server.js';
import { isDeepStrictEqual } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { connectBus, type NatsConnection } from '../src/transport/bus.js';
import { waitUntil } from './helpers/harness.js';

const KEYED_SERVER = new URL('./fixtures/keyed-server.ts', import.meta.url);
const UPDATES_SERVER = new URL('./fixtures/updates-server.ts', import.meta.url);
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

test.serial('Spark with live updates: a worker SIGKILLed mid-stream is retried by Spark and replays its partition’s updates, each once', async (t) => {
  const keys = Array.from({ length: 20 }, (_, k) => `k${k}`);
  const rounds = 50;
  const cluster = new Cluster<AmountRow>({
    server: UPDATES_SERVER,
    partitions: 2,
    spark: app,
    source: { rows: keys.map((id, k) => ({ id, amount: k })) },
    partitionBy: 'id',
    updates: 'orders.*',
    log: testLog,
    startTimeoutMs: 120_000,
  });
  const conns: NatsConnection[] = [];
  t.teardown(async () => {
    for (const nc of conns) await nc.close().catch(() => {});
    await cluster.stop().catch(() => {});
  });
  await cluster.start();
  const pub = await connectBus(cluster.credentials('publisher'), 'test-publisher');
  conns.push(pub);
  const js = jetstream(pub);
  const victim = cluster.members[1]!;
  for (let round = 0; round < rounds; round++) {
    await Promise.all(keys.map((k) => js.publish(`orders.${k}`, JSON.stringify({ op: 'add', n: round, i: round }))));
    if (round === rounds / 2) process.kill(victim.pid, 'SIGKILL');
  }
  const total = (rounds * (rounds - 1)) / 2;
  const want = (p: number) =>
    Object.fromEntries(keys.filter((k) => partitionOfKey(k, 2) === p).map((k) => [k, { amount: keys.indexOf(k) + total, updates: rounds, lastI: rounds - 1 }]));
  type State = { view: unknown; attempt: number; outOfOrder: number };
  let last = new Map<number, State>();
  await waitUntil(
    async () => {
      const replies = await cluster.requestAll<State>('state');
      if (![...replies.values()].every((r) => r.ok)) return false;
      last = new Map([...replies].map(([p, r]) => [p, (r as { value: State }).value]));
      return last.get(1)!.attempt > victim.attempt && [0, 1].every((p) => isDeepStrictEqual(last.get(p)!.view, want(p)));
    },
    180_000,
    'both partitions to equal a replay, partition 1 on a new attempt',
  );
  for (const p of [0, 1]) {
    t.deepEqual(last.get(p)!.view, want(p), `partition ${p}`);
    t.is(last.get(p)!.outOfOrder, 0, `partition ${p}: a key's updates in order`);
  }
  t.true(last.get(1)!.attempt > victim.attempt, 'partition 1 was retried by Spark');
  await cluster.stop();
});
