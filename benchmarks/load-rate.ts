/**
 * Benchmark 4 — load rate: rows per second from the source into initPartition, measured inside
 * the partition server (initPartition's start to its last row), for small records and ~1 KB
 * records, reading per batch (`rows.batches()`, the fast path) and per row (`for await`).
 * Embedded launcher; the library on Spark (rows from a Spark SQL source as JSON rows and as Arrow,
 * see load-spark.ts); and a bare Spark task iterating its partition.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import type { BenchConfig } from './servers/bench-server.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { sparkUnavailable } from './lib/spark.js';
import { measure } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';
import { sparkCases } from './load-spark.js';
import type { ServerStats } from './servers/bench-server.js';
import { valueOf, type BenchRow } from './servers/row-store.js';

const PAYLOAD = 'x'.repeat(1000);

function smallRows(n: number): BenchRow[] {
  return Array.from({ length: n }, (_, id) => ({ id, v: valueOf(id) }));
}

/** `{id: long, v: int}` rows as a Parquet file with row groups of `groupRows` rows. */
function smallParquet(n: number, groupRows: number): Uint8Array {
  const table = tableFromArrays({ id: BigInt64Array.from({ length: n }, (_, id) => BigInt(id)), v: Int32Array.from({ length: n }, (_, id) => valueOf(id)) });
  const props = new WriterPropertiesBuilder().setMaxRowGroupSize(groupRows).build();
  return writeParquet(WasmTable.fromIPCStream(tableToIPC(table, 'stream')), props);
}

function kbRows(n: number): BenchRow[] {
  return Array.from({ length: n }, (_, id) => ({ id, v: valueOf(id), payload: PAYLOAD }));
}

export default async function loadRate(ctx: BenchContext): Promise<SectionResult> {
  const small = ctx.quick ? 20_000 : 1_000_000;
  const kb = ctx.quick ? 4_000 : 200_000;
  const reps = ctx.quick ? 1 : 3;
  const s = section('load', '4. Load rate into initPartition', {
    smallRows: small,
    kbRows: kb,
    kbPayloadBytes: PAYLOAD.length,
    reps,
    store: 'discard (rows counted only)',
  });
  const rate = { higherIsBetter: true };

  /** Runs one load and adds per-partition rates to `perPartition` and the all-together rate to `aggregate`. */
  const run = async (o: Parameters<typeof benchOptions>[1], expected: number, perPartition: number[], aggregate: number[]): Promise<void> => {
    await withCluster(benchOptions(ctx, o), async (cluster) => {
      const replies = await cluster.requestAll<ServerStats>('stats');
      let slowest = 0;
      let total = 0;
      for (const [p, rep] of replies) {
        if (!rep.ok) throw new Error(`stats of partition ${p}: ${rep.error.message}`);
        perPartition.push((rep.value.rows / rep.value.loadMs) * 1000);
        slowest = Math.max(slowest, rep.value.loadMs);
        total += rep.value.rows;
      }
      if (total !== expected) throw new Error(`loaded ${total} rows, expected ${expected}`);
      aggregate.push((total / slowest) * 1000);
    });
  };

  const cases: { name: string; rows: BenchRow[]; partitions: number; read: NonNullable<BenchConfig['read']>; reps: number }[] = [
    { name: 'small records', rows: smallRows(small), partitions: 1, read: 'batches', reps },
    { name: 'small records', rows: smallRows(small), partitions: 4, read: 'batches', reps },
    { name: '1 KB records', rows: kbRows(kb), partitions: 1, read: 'batches', reps },
    { name: '1 KB records', rows: kbRows(kb), partitions: 4, read: 'batches', reps },
    { name: 'small records', rows: smallRows(small), partitions: 4, read: 'rows', reps: ctx.quick ? 1 : 2 },
    { name: '1 KB records', rows: kbRows(kb), partitions: 4, read: 'rows', reps: ctx.quick ? 1 : 2 },
  ];
  for (const c of cases) {
    const perPartition: number[] = [];
    const aggregate: number[] = [];
    for (let r = 0; r < c.reps; r++) {
      ctx.log(`  embedded ${c.name}, ${c.rows.length} rows in ${c.partitions} partitions, per ${c.read === 'rows' ? 'row' : 'batch'}, ${r + 1}/${c.reps} …`);
      await run({ data: c.rows, partitions: c.partitions, config: { store: 'discard', read: c.read } }, c.rows.length, perPartition, aggregate);
    }
    const how = c.read === 'rows' ? 'per row' : 'per batch';
    s.rows.push(measure(`embedded, ${c.name}, ${c.partitions} partition(s), ${how}: per partition`, 'rows/s', perPartition, rate));
    if (c.partitions > 1) s.rows.push(measure(`embedded, ${c.name}, ${c.partitions} partitions, ${how}: all together`, 'rows/s', aggregate, rate));
  }

  // An embedded Parquet file of the same small rows, in 16 row groups, read as Arrow by 4 partitions.
  const parquetDir = await mkdtemp(join(tmpdir(), 'sps-bench-parquet-'));
  try {
    const file = join(parquetDir, 'small.parquet');
    await writeFile(file, smallParquet(small, Math.ceil(small / 16)));
    for (const read of ['arrow', 'batches'] as const) {
      const perPartition: number[] = [];
      const aggregate: number[] = [];
      for (let r = 0; r < reps; r++) {
        ctx.log(`  embedded Parquet, ${small} small rows in 16 row groups, 4 partitions, ${read}, ${r + 1}/${reps} …`);
        await run({ data: { parquet: file }, partitions: 4, config: { store: 'discard', read } }, small, perPartition, aggregate);
      }
      const how = read === 'arrow' ? 'rows.arrow()' : 'rows.batches() (plain objects)';
      s.rows.push(
        measure(`embedded Parquet, small records, 4 partitions, ${how}: per partition`, 'rows/s', perPartition, {
          ...rate,
          note: 'row groups decoded by parquet-wasm in the launcher, Arrow IPC to the worker',
        }),
      );
    }
  } finally {
    await rm(parquetDir, { recursive: true, force: true });
  }
  const parquetArrow = s.rows.find((r) => r.name.startsWith('embedded Parquet, small records, 4 partitions, rows.arrow()'))!;
  s.targets.push({
    id: 'load.parquet',
    target: 'embedded Parquet source, small rows: >= 2M rows/s per partition',
    measured: `${Math.round(parquetArrow.median)} rows/s (4 partitions, rows.arrow())`,
    met: parquetArrow.median >= 2_000_000,
  });

  const sparkQuick = ctx.quick && ctx.sparkInQuick === true;
  const unavailable = ctx.quick && !sparkQuick ? 'quick mode (add --spark to run the Spark cases at quick sizes)' : sparkUnavailable();
  if (unavailable) s.skipped.push({ name: 'library on Spark and bare Spark task iterator', reason: unavailable });
  else await sparkCases(ctx, s, sparkQuick);
  const target = s.rows.find((r) => r.name === 'embedded, small records, 4 partition(s), per batch: per partition')!;
  s.targets.push({
    id: 'load.small',
    target: 'embedded, small rows: >= 500k rows/s per partition',
    measured: `${Math.round(target.median)} rows/s (4 partitions, per batch)`,
    met: target.median >= 500_000,
  });
  return s;
}
