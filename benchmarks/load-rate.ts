/**
 * Benchmark 4 — load rate: rows per second from the source into initPartition, measured inside
 * the partition server (initPartition's start to its last row), for small records and ~1 KB
 * records, reading per batch (`rows.batches()`, the fast path) and per row (`for await`).
 * Embedded launcher; the library on Spark (rows from a Spark SQL source, sent by the Python
 * runner to each worker as JSON frames); and a bare Spark task iterating its partition.
 */
import type { SparkApplication, SparkSource } from '../src/index.js';
import type { BenchConfig } from './servers/bench-server.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { sparkShape } from './lib/spark-shape.js';
import { sparkUnavailable } from './lib/spark.js';
import { withSparkApp } from './lib/spark-app.js';
import { measure } from './lib/timing.js';
import { reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';
import type { ServerStats } from './servers/bench-server.js';
import { valueOf, type BenchRow } from './servers/row-store.js';
import { shapeSettings } from './start-stop.js';

const PAYLOAD = 'x'.repeat(1000);

function smallRows(n: number): BenchRow[] {
  return Array.from({ length: n }, (_, id) => ({ id, v: valueOf(id) }));
}

function kbRows(n: number): BenchRow[] {
  return Array.from({ length: n }, (_, id) => ({ id, v: valueOf(id), payload: PAYLOAD }));
}

export default async function loadRate(ctx: BenchContext): Promise<SectionResult> {
  const small = ctx.quick ? 20_000 : 1_000_000;
  const kb = ctx.quick ? 4_000 : 200_000;
  const reps = ctx.quick ? 1 : 3;
  const sparkReps = 2;
  const s = section('load', '4. Load rate into initPartition', {
    smallRows: small,
    kbRows: kb,
    kbPayloadBytes: PAYLOAD.length,
    reps,
    sparkReps,
    store: 'discard (rows counted only)',
    sparkMaster: 'local[4]',
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

  const unavailable = ctx.quick ? 'quick mode' : sparkUnavailable();
  if (unavailable) s.skipped.push({ name: 'library on Spark and bare Spark task iterator', reason: unavailable });
  else {
    const sparkSmall = 1_000_000;
    const sparkKb = 200_000;
    const sql = (n: number, payload: boolean): SparkSource => ({
      sql: `SELECT id, CAST((id * 7919) % 1000 AS INT) AS v${payload ? `, repeat('x', ${PAYLOAD.length}) AS payload` : ''} FROM range(0, ${n}, 1, 4)`,
    });
    try {
      ctx.log('  Spark application on local[4] …');
      await withSparkApp('local[4]', ctx.log, async (app: SparkApplication) => {
        ctx.log('  spark: warm-up run …');
        await run({ spark: app, source: sql(1000, false), partitions: 4, config: { store: 'discard' } }, 1000, [], []);
        const sparkCases: { name: string; rows: number; source: SparkSource; note: string; reps: number }[] = [
          {
            name: 'small records',
            rows: sparkSmall,
            reps: sparkReps,
            source: sql(sparkSmall, false),
            note: `SQL source (${sparkSmall} rows {id, v}): rows rendered as JSON by the JVM (to_json), framed by the Python task`,
          },
          {
            name: '1 KB records',
            rows: sparkKb,
            reps: sparkReps,
            source: sql(sparkKb, true),
            note: `SQL source (${sparkKb} rows {id, v, payload}): rows rendered as JSON by the JVM (to_json), framed by the Python task`,
          },
          {
            name: 'bare integers',
            rows: sparkSmall,
            reps: 1,
            source: { range: { end: sparkSmall } },
            note: `range source (${sparkSmall} ints made in Python, no DataFrame): JSON frames to the worker`,
          },
        ];
        for (const c of sparkCases) {
          const perPartition: number[] = [];
          const aggregate: number[] = [];
          for (let r = 0; r < c.reps; r++) {
            ctx.log(`  Spark local[4] ${c.name}, ${c.rows} rows in 4 partitions, per batch, ${r + 1}/${c.reps} …`);
            await run({ spark: app, source: c.source, partitions: 4, config: { store: 'discard', read: 'batches' } }, c.rows, perPartition, aggregate);
          }
          s.rows.push(measure(`Spark local[4], ${c.name}, 4 partitions, per batch: per partition`, 'rows/s', perPartition, { ...rate, note: c.note }));
          s.rows.push(measure(`Spark local[4], ${c.name}, 4 partitions, per batch: all together`, 'rows/s', aggregate, rate));
        }
      });
    } catch (err) {
      s.skipped.push({ name: 'library on Spark (rows from a Spark task into initPartition)', reason: reasonOf(err) });
    }
    try {
      const shape = shapeSettings(ctx.quick);
      const out = await sparkShape('local[8]', shape);
      const note = `bare Spark: a Python task iterating its partition (${shape.loadRows} rows in ${shape.loadParts}), no JSON, no worker`;
      s.rows.push(measure('bare Spark task, small records: per partition', 'rows/s', out.load.small, { higherIsBetter: true, note }));
      s.rows.push(measure('bare Spark task, 1 KB records: per partition', 'rows/s', out.load['1kb'], { higherIsBetter: true, note }));
    } catch (err) {
      s.skipped.push({ name: 'bare Spark task iterator', reason: reasonOf(err) });
    }
  }
  const perPart = (name: string) => s.rows.find((r) => r.name === name)?.median;
  const sqlSmall = perPart('Spark local[4], small records, 4 partitions, per batch: per partition');
  const ints = perPart('Spark local[4], bare integers, 4 partitions, per batch: per partition');
  if (sqlSmall !== undefined && ints !== undefined) {
    s.notes.push(
      `Spark: the same JSON frames carry ${Math.round(ints).toLocaleString('en-US')} bare integers/s per partition from a range source but ${Math.round(sqlSmall).toLocaleString('en-US')} {id, v} rows/s from a SQL source, so the rest of the cost is the DataFrame side (repartition, the JVM rendering JSON, the strings crossing to the Python task), not the frames or initPartition.`,
    );
  }
  const target = s.rows.find((r) => r.name === 'embedded, small records, 4 partition(s), per batch: per partition')!;
  s.targets.push({
    id: 'load.small',
    target: 'embedded, small rows: >= 500k rows/s per partition',
    measured: `${Math.round(target.median)} rows/s (4 partitions, per batch)`,
    met: target.median >= 500_000,
  });
  return s;
}
