/**
 * Benchmark 6 — scaling: scatter/gather latency and start time as partitions grow 1 → 16 (same
 * total rows), and query latency as rows grow 10k → 10M (4 partitions).
 */
import { benchOptions, sumReplies, withCluster } from './lib/cluster.js';
import { measure, sampleAsync } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';
import type { ServerStats } from './servers/bench-server.js';

const LT = 100;

export default async function scaling(ctx: BenchContext): Promise<SectionResult> {
  const partitionSizes = ctx.quick ? [1, 2] : [1, 2, 4, 8, 16];
  const rowSizes = ctx.quick ? [1_000, 10_000] : [10_000, 100_000, 1_000_000, 10_000_000];
  const fixedRows = ctx.quick ? 10_000 : 100_000;
  const bounds = { count: ctx.quick ? 30 : 300, maxMs: ctx.quick ? 2000 : 8000 };
  const s = section('scaling', '6. Scaling with partitions and rows', {
    partitionSizes,
    rowsWhenScalingPartitions: fixedRows,
    rowSizes,
    partitionsWhenScalingRows: 4,
    samples: bounds.count,
  });

  for (const n of partitionSizes) {
    ctx.log(`  ${n} partitions …`);
    const r = await withCluster(benchOptions(ctx, { data: { range: { end: fixedRows } }, partitions: n, config: { store: 'columns' } }), async (cluster) =>
      sampleAsync(async () => sumReplies(await cluster.requestAll('count_matching', { lt: LT })), bounds),
    );
    s.rows.push(measure(`${n} partitions: scatter/gather count`, 'ms', r.value));
    s.rows.push(measure(`${n} partitions: start()`, 'ms', [r.startMs]));
  }
  for (const rows of rowSizes) {
    ctx.log(`  ${rows} rows …`);
    const key = (i: number): number => (i * 104729) % rows;
    await withCluster(benchOptions(ctx, { data: { range: { end: rows } }, partitions: 4, config: { store: 'columns' } }), async (cluster) => {
      s.rows.push(
        measure(
          `${rows} rows: scatter/gather count`,
          'ms',
          await sampleAsync(async () => sumReplies(await cluster.requestAll('count_matching', { lt: LT })), bounds),
        ),
      );
      s.rows.push(measure(`${rows} rows: scatter/gather lookup`, 'ms', await sampleAsync(async (i) => cluster.requestAll('lookup', { key: key(i) }), bounds)));
      const stats = await cluster.requestAll<ServerStats>('stats');
      const loads = [...stats.values()].map((v) => (v.ok ? v.value.loadMs : Number.NaN));
      s.rows.push(measure(`${rows} rows: load per partition`, 'ms', loads));
    });
  }
  s.notes.push('Start times here are single samples (benchmark 3 repeats them); 16 worker processes share 2 cores.');
  return s;
}
