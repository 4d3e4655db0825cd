/**
 * Embedded Parquet and Arrow IPC file sources (no Spark): split evenly by rows across partitions
 * (cutting row groups and record batches where a share ends), read by real workers as Arrow; a malformed Arrow stream fails the partition, naming
 * it, after its attempts were retried.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordBatch, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { Cluster, InvalidOptionError, PartitionFailedError } from '../src/index.js';
import { EmbeddedLauncher } from '../src/driver/launch/embedded-launcher.js';
import { partitionSource } from '../src/driver/launch/data-source.js';
import type { ArrowSummary } from './helpers/spark-arrow-server.js';
import { testCluster } from './helpers/with-cluster.js';

const PROBE = new URL('./helpers/spark-arrow-server.ts', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'sps-files-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Rows `from..to-1` as `{ id: long, v: int, s: string }`. */
const table = (from: number, to: number): Table =>
  new Table({
    id: vectorFromArray(BigInt64Array.from({ length: to - from }, (_, i) => BigInt(from + i))),
    v: vectorFromArray(Int32Array.from({ length: to - from }, (_, i) => (from + i) % 7)),
    s: vectorFromArray(
      Array.from({ length: to - from }, (_, i) => `r${from + i}`),
      new Utf8(),
    ),
  });

/** A Parquet file of `rows` rows in row groups of `groupRows`. */
function parquetFile(path: string, rows: number, groupRows: number): void {
  const props = new WriterPropertiesBuilder().setMaxRowGroupSize(groupRows).build();
  writeFileSync(path, writeParquet(WasmTable.fromIPCStream(tableToIPC(table(0, rows), 'stream')), props));
}

async function run<T>(data: unknown, partitions: number, read: 'rows' | 'arrow', endpoint: string, result?: Map<number, unknown[]>): Promise<Map<number, T>> {
  const cluster = new Cluster({ server: PROBE, data: data as never, partitions, config: { read, result: result && 'arrow' }, log: false });
  try {
    await cluster.start();
    const out = new Map<number, T>();
    for (const [p, reply] of await cluster.requestAll<T>(endpoint)) {
      if (!reply.ok) throw new Error(`partition ${p}: ${reply.error.message}`);
      out.set(p, reply.value);
    }
    await cluster.stop();
    for (const [p, records] of cluster.result()) result?.set(p, records);
    return out;
  } finally {
    await cluster.stop().catch(() => {});
  }
}

const ids = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('a Parquet file is split evenly by rows across partitions (cutting row groups) and read as rows; a result with a schema reaches the driver as records', async (t) => {
  const file = join(dir, 'ten-groups.parquet');
  parquetFile(file, 1000, 100);
  const results = new Map<number, unknown[]>();
  const rows = await run<{ id: number; v: number; s: string }[]>({ parquet: file }, 3, 'rows', 'rows', results);
  // 1000 rows in 3 partitions: 333, 333 and 334 of them, in order; row groups 4 and 7 are cut.
  t.deepEqual(
    [0, 1, 2].map((p) => rows.get(p)!.map((r) => r.id)),
    [ids(0, 333), ids(333, 666), ids(666, 1000)],
  );
  t.deepEqual(rows.get(1)![0], { id: 333, v: 333 % 7, s: 'r333' });
  // The probe returned an Arrow table of one row per row read; the driver has them as objects.
  t.is(results.get(2)!.length, 334);
  t.deepEqual(results.get(0)!.slice(0, 2), [
    { partition: 0, id: 0, half: 0, name: 'n0', even: true, at: new Date(1704164645000) },
    { partition: 0, id: 1, half: 0.5, name: null, even: false, at: new Date(1704164645001) },
  ]);
});

test('a directory of Arrow IPC files (file and stream format) is split by record batches and read with rows.arrow()', async (t) => {
  const arrows = join(dir, 'arrows');
  mkdirSync(arrows);
  const batches = (from: number) => {
    const rows = table(from, from + 30);
    return [rows.slice(0, 10), rows.slice(10)].flatMap((x) => x.batches);
  };
  writeFileSync(join(arrows, 'a.arrow'), tableToIPC(new Table(batches(0)), 'file'));
  writeFileSync(join(arrows, 'b.arrow'), tableToIPC(new Table(batches(30)), 'stream'));
  writeFileSync(join(arrows, '_SUCCESS'), '');
  const summaries = await run<ArrowSummary>({ arrow: arrows }, 2, 'arrow', 'summary');
  // Four batches (10, 20, 10, 20 rows) in two partitions: the first file's two, then the second's.
  for (const [p, s] of summaries) {
    t.is(s.format, 'arrow');
    t.is(s.batches, 2);
    t.deepEqual(
      s.columns.id!.values,
      Array.from({ length: 30 }, (_, i) => `${p * 30 + i}n`),
    );
    t.is(s.columns.s!.type, 'Utf8');
    t.is(s.columns.v!.buffer, 'Int32Array');
  }
});

test('an Arrow IPC file written as one record batch is spread evenly over the partitions, in order', async (t) => {
  const file = join(dir, 'one-batch.arrow');
  const whole = table(0, 20_001);
  t.is(whole.batches.length, 1);
  writeFileSync(file, tableToIPC(whole, 'file'));
  const rows = await run<{ id: number; s: string }[]>({ arrow: file }, 4, 'rows', 'rows');
  // 20001 rows in 4 partitions: 5000, 5000, 5000, 5001, each a zero-copy slice of the one batch.
  t.deepEqual(
    [0, 1, 2, 3].map((p) => rows.get(p)!.map((r) => r.id)),
    [ids(0, 5000), ids(5000, 10_000), ids(10_000, 15_000), ids(15_000, 20_001)],
  );
  t.deepEqual(rows.get(3)!.at(-1), { id: 20_000, v: 20_000 % 7, s: 'r20000' });
});

test('a one-row-group Parquet file and more partitions than rows: shares differ by one row at most', async (t) => {
  const file = join(dir, 'one-group.parquet');
  parquetFile(file, 3, 100);
  const rows = await run<{ id: number }[]>({ parquet: file }, 5, 'rows', 'rows');
  t.deepEqual(
    [0, 1, 2, 3, 4].map((p) => rows.get(p)!.map((r) => r.id)),
    [[], [0], [], [1], [2]],
  );
});

test('a file that is not Parquet or Arrow fails with an error naming the option', async (t) => {
  const bad = join(dir, 'bad.parquet');
  writeFileSync(bad, 'not parquet at all');
  await t.throwsAsync(partitionSource({ parquet: bad }, 2), {
    instanceOf: InvalidOptionError,
    message: /"data\.parquet": ".*bad\.parquet" is not a readable Parquet file/,
  });
  await t.throwsAsync(partitionSource({ arrow: bad }, 2), {
    instanceOf: InvalidOptionError,
    message: /"data\.arrow": ".*bad\.parquet" is not a readable Arrow IPC/,
  });
  await t.throwsAsync(partitionSource({ parquet: join(dir, 'missing') }, 2), { message: /"data\.parquet": cannot read .*ENOENT/ });
});

test('a malformed Arrow stream fails the partition with an error naming it, after every attempt was retried', async (t) => {
  const good = tableToIPC(new Table([table(0, 50).batches[0] as RecordBatch]), 'stream');
  // Partition 1's stream is cut inside a record batch, as by a feeder that died.
  const launcher = new EmbeddedLauncher({
    partitions: 2,
    rowFormat: 'arrow',
    arrowSlice: async function* (p) {
      yield p === 1 ? good.subarray(0, good.length - 40) : good;
    },
  });
  const cluster = testCluster(t, { server: PROBE, launcher, partitions: 2, maxFailures: 2, config: { read: 'rows' }, log: false });
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.like(err, { partition: 1, failures: 2 });
  t.regex(err!.message, /Partition 1 failed 2 time\(s\).*\[SPS_ROWS_MALFORMED\] partition 1 rows on stdin: malformed Arrow stream/);
});
