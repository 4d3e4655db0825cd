/**
 * Benchmark 4 — load rate: rows per second from the source into initPartition, measured inside
 * the partition server (initPartition's start to its last row), for small records and ~1 KB
 * records; embedded launcher, and a bare Spark task reading its partition for comparison.
 */
import { benchOptions, withCluster } from './lib/cluster.js';
import { sparkShape } from './lib/spark-shape.js';
import { sparkUnavailable } from './lib/spark.js';
import { measure } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';
import type { ServerStats } from './servers/bench-server.js';
import { valueOf, type BenchRow } from './servers/row-store.js';
import { shapeSettings, sparkLauncherPresent } from './start-stop.js';

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
  const s = section('load', '4. Load rate into initPartition', { smallRows: small, kbRows: kb, kbPayloadBytes: PAYLOAD.length, reps, store: 'discard (rows counted only)' });

  const cases: { name: string; rows: BenchRow[]; partitions: number }[] = [
    { name: 'small records', rows: smallRows(small), partitions: 1 },
    { name: 'small records', rows: smallRows(small), partitions: 4 },
    { name: '1 KB records', rows: kbRows(kb), partitions: 1 },
    { name: '1 KB records', rows: kbRows(kb), partitions: 4 },
  ];
  for (const c of cases) {
    const perPartition: number[] = [];
    const aggregate: number[] = [];
    for (let r = 0; r < reps; r++) {
      ctx.log(`  embedded ${c.name}, ${c.rows.length} rows in ${c.partitions} partitions, ${r + 1}/${reps} …`);
      await withCluster(benchOptions(ctx, { data: c.rows, partitions: c.partitions, config: { store: 'discard' } }), async (cluster) => {
        const replies = await cluster.requestAll<ServerStats>('stats');
        let slowest = 0;
        let total = 0;
        for (const [p, rep] of replies) {
          if (!rep.ok) throw new Error(`stats of partition ${p}: ${rep.error.message}`);
          perPartition.push((rep.value.rows / rep.value.loadMs) * 1000);
          slowest = Math.max(slowest, rep.value.loadMs);
          total += rep.value.rows;
        }
        if (total !== c.rows.length) throw new Error(`loaded ${total} rows, expected ${c.rows.length}`);
        aggregate.push((total / slowest) * 1000);
      });
    }
    const rate = { higherIsBetter: true };
    s.rows.push(measure(`embedded, ${c.name}, ${c.partitions} partition(s): per partition`, 'rows/s', perPartition, rate));
    if (c.partitions > 1) s.rows.push(measure(`embedded, ${c.name}, ${c.partitions} partitions: all together`, 'rows/s', aggregate, rate));
  }

  const unavailable = ctx.quick ? 'quick mode' : sparkUnavailable();
  s.skipped.push({ name: 'library on Spark (rows from a Spark task into initPartition)', reason: sparkLauncherPresent() ? 'spark launcher present but not wired into the benchmark yet' : 'spark launcher not available' });
  if (unavailable) s.skipped.push({ name: 'bare Spark task iterator', reason: unavailable });
  else {
    try {
      const shape = shapeSettings(ctx.quick);
      const out = await sparkShape('local[8]', shape);
      const note = `bare Spark: a Python task iterating its partition (${shape.loadRows} rows in ${shape.loadParts})`;
      s.rows.push(measure('bare Spark task, small records: per partition', 'rows/s', out.load.small, { higherIsBetter: true, note }));
      s.rows.push(measure('bare Spark task, 1 KB records: per partition', 'rows/s', out.load['1kb'], { higherIsBetter: true, note }));
    } catch (err) {
      s.skipped.push({ name: 'bare Spark task iterator', reason: (err as Error).message });
    }
  }
  const target = s.rows.find((r) => r.name.startsWith('embedded, small records, 4 partition'))!;
  s.targets.push({ id: 'load.small', target: 'embedded, small rows: >= 500k rows/s per partition', measured: `${Math.round(target.median)} rows/s (4 partitions)`, met: target.median >= 500_000 });
  return s;
}
