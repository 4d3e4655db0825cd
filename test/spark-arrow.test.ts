/**
 * The Arrow row path on a real local-mode Spark (local[2,4], one application for the file):
 * DataFrame sources reach the partition servers as Arrow record batches, as `rows` (plain objects)
 * and as `rows.arrow()`; every type of the README's table, nulls, empty partitions, bounded memory
 * over a large stream, and the JSON fallback for a type Arrow cannot carry.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type SparkApplication, type SparkSource } from '../src/index.js';
import { startApp, testLog } from './helpers/spark-harness.js';
import type { ArrowProbeConfig, ArrowSummary } from './helpers/spark-arrow-server.js';
import { testCluster } from './helpers/with-cluster.js';

const PROBE = new URL('./helpers/spark-arrow-server.ts', import.meta.url);
let app: SparkApplication | undefined;
const dir = mkdtempSync(join(tmpdir(), 'sps-arrow-test-'));

test.before(async () => {
  app = await startApp('local[2,4]');
});

test.after.always(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a probe cluster on `source`, runs `fn` with it, and always stops it. */
async function withProbe<T>(
  t: { teardown(fn: () => unknown): void },
  source: SparkSource,
  read: ArrowProbeConfig['read'],
  fn: (c: Cluster) => Promise<T>,
  extra: Record<string, unknown> = {},
): Promise<T> {
  const cluster = testCluster(t, { server: PROBE, partitions: 2, spark: app, source, config: { read }, log: testLog, startTimeoutMs: 120_000, ...extra });
  await cluster.start();
  const out = await fn(cluster);
  await cluster.stop();
  return out;
}

async function gather<T>(cluster: Cluster, endpoint: string): Promise<T[]> {
  const out: T[] = [];
  for (const [p, reply] of await cluster.requestAll<T>(endpoint)) {
    if (!reply.ok) throw new Error(`partition ${p}: ${reply.error.message}`);
    out.push(reply.value);
  }
  return out;
}

// Row 1 is null in every column but id; the others hold a value of each type.
const ALL_TYPES: SparkSource = {
  sql: `SELECT id,
    IF(id = 1, NULL, CAST(id AS INT)) AS i,
    IF(id = 1, NULL, CAST(id AS SMALLINT)) AS s,
    IF(id = 1, NULL, CAST(id AS TINYINT)) AS t,
    IF(id = 1, NULL, id * 4503599627370) AS big,
    IF(id = 1, NULL, CAST(id AS DOUBLE) / 4) AS d,
    IF(id = 1, NULL, CAST(id / 2 AS FLOAT)) AS f,
    IF(id = 1, NULL, concat('s', id, 'é')) AS str,
    IF(id = 1, NULL, id % 2 = 0) AS bool,
    IF(id = 1, NULL, timestamp_millis(1704164645123 + id)) AS ts,
    IF(id = 1, NULL, date_add(DATE '2024-01-02', CAST(id AS INT))) AS dt,
    IF(id = 1, NULL, CAST(id + 0.25 AS DECIMAL(10, 2))) AS dec,
    IF(id = 1, NULL, CAST(-id - 0.5 AS DECIMAL(38, 10))) AS negdec,
    IF(id = 1, NULL, array(id, NULL)) AS arr,
    IF(id = 1, NULL, named_struct('a', id, 'b', 'x')) AS st,
    IF(id = 1, NULL, map('k', id)) AS m,
    IF(id = 1, NULL, X'0102') AS bin
    FROM range(3)`,
};

function expectedRow(id: number): Record<string, unknown> {
  if (id === 1) {
    const nulls = ['i', 's', 't', 'big', 'd', 'f', 'str', 'bool', 'ts', 'dt', 'dec', 'negdec', 'arr', 'st', 'm', 'bin'];
    return { id, ...Object.fromEntries(nulls.map((k) => [k, null])) };
  }
  return {
    id,
    i: id,
    s: id,
    t: id,
    big: id * 4503599627370,
    d: id / 4,
    f: id / 2,
    str: `s${id}é`,
    bool: id % 2 === 0,
    ts: new Date(1704164645123 + id),
    dt: new Date(Date.UTC(2024, 0, 2 + id)),
    dec: `${id}.25`,
    negdec: `-${id}.5000000000`,
    arr: [id, null],
    st: { a: id, b: 'x' },
    m: { k: id },
    bin: [1, 2],
  };
}

test.serial('a DataFrame source reaches rows as plain objects from Arrow: every type, nulls', async (t) => {
  t.timeout(120_000);
  const rows = await withProbe(t, ALL_TYPES, 'rows', async (c) => (await gather<Record<string, unknown>[]>(c, 'rows')).flat());
  const norm = (r: Record<string, unknown>): Record<string, unknown> => ({ ...r, bin: r.bin === null ? null : Array.from(r.bin as Uint8Array) });
  t.deepEqual(
    rows.map(norm).sort((a, b) => (a.id as number) - (b.id as number)),
    [0, 1, 2].map(expectedRow),
  );
});

test.serial('rows.arrow() yields the record batches: Arrow types, typed arrays, nulls', async (t) => {
  t.timeout(120_000);
  const summaries = await withProbe(t, ALL_TYPES, 'arrow', (c) => gather<ArrowSummary>(c, 'summary'));
  t.true(summaries.every((s) => s.format === 'arrow'));
  t.is(
    summaries.reduce((n, s) => n + s.rows, 0),
    3,
  );
  const cols = summaries.find((s) => s.rows > 0)!.columns;
  const types = Object.fromEntries(Object.entries(cols).map(([k, c]) => [k, `${c.type}${c.nullable ? '?' : ''}`]));
  t.deepEqual(types, {
    id: 'Int64',
    i: 'Int32?',
    s: 'Int16?',
    t: 'Int8?',
    big: 'Int64?',
    d: 'Float64?',
    f: 'Float32?',
    str: 'Utf8?',
    bool: 'Bool?',
    ts: 'Timestamp<MICROSECOND, Etc/UTC>?',
    dt: 'Date32<DAY>?',
    dec: 'Decimal[10e+2]?',
    negdec: 'Decimal[38e+10]?',
    arr: 'List<Int64>?',
    st: 'Struct<{a:Int64, b:Utf8}>?',
    m: 'Map<{key:Utf8, value:Int64}>?',
    bin: 'Binary?',
  });
  // Numeric columns are typed arrays over the received bytes.
  t.like(Object.fromEntries(Object.entries(cols).map(([k, c]) => [k, c.buffer])), {
    id: 'BigInt64Array',
    i: 'Int32Array',
    s: 'Int16Array',
    t: 'Int8Array',
    d: 'Float64Array',
    f: 'Float32Array',
    ts: 'BigInt64Array',
    dt: 'Int32Array',
  });
  const all = summaries.flatMap((s) => (s.rows > 0 ? [s.columns] : []));
  const ids = all.flatMap((c) => c.id!.values);
  const bigs = all.flatMap((c) => c.big!.values);
  const strs = all.flatMap((c) => c.str!.values);
  const order = ids.map((_, k) => k).sort((a, b) => String(ids[a]).localeCompare(String(ids[b])));
  t.deepEqual(
    order.map((k) => ids[k]),
    ['0n', '1n', '2n'],
  );
  t.deepEqual(
    order.map((k) => bigs[k]),
    ['0n', null, '9007199254740n'],
  );
  t.deepEqual(
    order.map((k) => strs[k]),
    ['s0é', null, 's2é'],
  );
});

test.serial('an empty partition gets an Arrow stream with no rows', async (t) => {
  t.timeout(120_000);
  const summaries = await withProbe(t, { sql: 'SELECT 7 AS x' }, 'arrow', (c) => gather<ArrowSummary>(c, 'summary'));
  t.deepEqual(summaries.map((s) => [s.format, s.rows]).sort(), [
    ['arrow', 0],
    ['arrow', 1],
  ]);
});

test.serial('a column type Arrow cannot carry falls back to JSON rows, and the log says so', async (t) => {
  t.timeout(120_000);
  const lines: string[] = [];
  // Arrow structs cannot hold two fields of one name; JSON keeps the last.
  const source: SparkSource = { sql: "SELECT 1 AS id, named_struct('a', 1, 'a', 2) AS dup" };
  const rows = await withProbe(t, source, 'rows', async (c) => (await gather<Record<string, unknown>[]>(c, 'rows')).flat(), {
    log: (line: string) => lines.push(line),
  });
  t.deepEqual(rows, [{ id: 1, dup: { a: 2 } }]);
  t.true(
    lines.some((l) => /rows reach the partitions as json: .*no Arrow form.*DUPLICATED_FIELD_NAME/.test(l)),
    lines.filter((l) => /json|arrow/i.test(l)).join('\n'),
  );
});

test.serial('format: "rows" sends JSON rows; format: "arrow" refuses a type Arrow cannot carry', async (t) => {
  t.timeout(120_000);
  const summaries = await withProbe(t, { sql: 'SELECT id FROM range(4)' }, 'rows', async (c) => gather<ArrowSummary>(c, 'summary'), { format: 'rows' });
  t.deepEqual(
    summaries.map((s) => s.format),
    ['json', 'json'],
  );
  const cluster = new Cluster({
    server: PROBE,
    partitions: 2,
    spark: app,
    source: { sql: "SELECT named_struct('a', 1, 'a', 2) AS dup" },
    config: { read: 'rows' },
    log: testLog,
    format: 'arrow',
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await t.throwsAsync(cluster.start(), { message: /cannot travel as Arrow \(option format 'arrow'\).*DUPLICATED_FIELD_NAME/ });
});

test.serial("a large Arrow stream is read in bounded memory (the worker's RSS)", async (t) => {
  t.timeout(180_000);
  // ~115 MB of record batches per partition, made by spark.range on local[2].
  const payload = 750;
  const rows = 300_000;
  const source: SparkSource = { sql: `SELECT id, repeat('x', ${payload}) AS payload FROM range(0, ${rows}, 1, 2)` };
  const summaries = await withProbe(t, source, 'discard', (c) => gather<ArrowSummary>(c, 'summary'));
  t.is(
    summaries.reduce((n, s) => n + s.rows, 0),
    rows,
  );
  for (const s of summaries) {
    const mb = (n: number) => Math.round(n / 1e6);
    t.log(`partition: ${mb(s.bytes)} MB in ${s.batches} batches; RSS ${mb(s.rssBefore)} MB before, ${mb(s.rssPeak)} MB at most`);
    t.true(s.bytes > 100e6, `only ${s.bytes} bytes`);
    // Holding the stream would add its size; reading it batch by batch adds a few batches at most.
    t.true(s.rssPeak - s.rssBefore < 96e6, `RSS grew by ${mb(s.rssPeak - s.rssBefore)} MB while reading ${mb(s.bytes)} MB`);
  }
});

test.serial('a result with a schema (an Arrow table) is a typed DataFrame in Spark, saved as Parquet with its types', async (t) => {
  t.timeout(180_000);
  const cluster = new Cluster({
    server: PROBE,
    partitions: 2,
    spark: app,
    source: { sql: 'SELECT id FROM range(4)' },
    config: { read: 'rows', result: 'arrow' },
    cacheResult: true,
    log: testLog,
    startTimeoutMs: 120_000,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  await cluster.stop();
  // The driver gets the rows as records.
  const records = [...cluster.result().values()].flat() as { id: number; name: string | null }[];
  t.deepEqual(records.map((r) => [r.id, r.name]).sort(), [
    [0, 'n0'],
    [1, null],
    [2, 'n2'],
    [3, 'n3'],
  ]);
  const ds = cluster.resultDataset!;
  t.teardown(() => ds.unpersist().catch(() => {}));
  t.is(await ds.count(), 4);
  const out = join(dir, 'typed.parquet');
  await ds.save(out, { format: 'parquet' });
  const types = await app!.sql(
    `SELECT typeof(partition) p, typeof(id) i, typeof(half) h, typeof(name) n, typeof(even) e, typeof(at) a FROM parquet.\`${out}\` LIMIT 1`,
  );
  t.deepEqual(types, [{ p: 'int', i: 'bigint', h: 'double', n: 'string', e: 'boolean', a: 'timestamp' }]);
  const back = await app!.sql(`SELECT id, half, name, even, CAST(at AS STRING) AS at FROM parquet.\`${out}\` ORDER BY id`);
  t.deepEqual(back, [
    { id: 0, half: 0, name: 'n0', even: true, at: '2024-01-02 03:04:05' },
    { id: 1, half: 0.5, name: null, even: false, at: '2024-01-02 03:04:05.001' },
    { id: 2, half: 1, name: 'n2', even: true, at: '2024-01-02 03:04:05.002' },
    { id: 3, half: 1.5, name: 'n3', even: false, at: '2024-01-02 03:04:05.003' },
  ]);
  await ds.unpersist();
});
