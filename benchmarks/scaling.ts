/**
 * Benchmark 6 — scaling: scatter/gather latency and start time as partitions grow 1 → 16 (same
 * total rows), query latency as rows grow 10k → 10M (4 partitions), and many partitions on one
 * machine (8 → 64, library compiled to JavaScript as published): start, `requestAll` of a ping,
 * stop, and the control bytes each start publishes.
 */
import { benchOptions, sumReplies, withCluster } from './lib/cluster.js';
import { runScaleProbe } from './lib/compiled.js';
import { measure, sampleAsync } from './lib/timing.js';
import { reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';
import { SparkApplication } from '../src/index.js';
import { sparkShape } from './lib/spark-shape.js';
import { sparkUnavailable } from './lib/spark.js';
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
  await manyPartitions(ctx, s);
  await manySparkPartitions(ctx, s);
  return s;
}

/** 8 → 64 partitions, compiled JS, embedded: one start each, a ping scatter/gather, stop, control bytes. */
async function manyPartitions(ctx: BenchContext, s: SectionResult): Promise<void> {
  const sizes = ctx.quick ? [2, 4] : [8, 16, 32, 64];
  s.settings.manyPartitions = sizes;
  ctx.log(`  compiled JS: ${sizes.join(', ')} partitions (start, requestAll ping, stop, control bytes) …`);
  let out;
  try {
    // In a full run the largest size starts once more with no request counting: what stats add to a start.
    out = await runScaleProbe(sizes, ctx.quick ? 20 : 200, !ctx.quick);
  } catch (err) {
    s.skipped.push({ name: 'compiled JS: many partitions', reason: reasonOf(err) });
    return;
  }
  const perPartition: string[] = [];
  for (const n of sizes) {
    const r = out[n];
    if (!r) continue;
    const total = Object.values(r.control).reduce((a, k) => ({ msgs: a.msgs + k.msgs, bytes: a.bytes + k.bytes }), { msgs: 0, bytes: 0 });
    const kinds = Object.entries(r.control)
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .map(([k, v]) => `${k} ${v.msgs} msgs ${v.bytes} B`)
      .join(', ');
    s.rows.push(measure(`compiled JS, ${n} partitions: start()`, 'ms', [r.startMs], { note: 'one sample; all workers share 2 cores' }));
    s.rows.push(measure(`compiled JS, ${n} partitions: requestAll ping`, 'ms', r.ping, { note: 'scatter/gather of a trivial endpoint' }));
    s.rows.push(measure(`compiled JS, ${n} partitions: stop()`, 'ms', [r.stopMs], { note: 'until every result is assembled' }));
    s.rows.push(measure(`compiled JS, ${n} partitions: control bytes published during start()`, 'B', [total.bytes], { note: `${total.msgs} msgs: ${kinds}` }));
    perPartition.push(`${n}p ${total.bytes} B (${(total.bytes / n).toFixed(0)} B/partition)`);
  }
  const uncounted = out[`${sizes.at(-1)}-uncounted`];
  if (uncounted) {
    const bytes = Object.values(uncounted.control).reduce((a, k) => a + k.bytes, 0);
    const stats = out[sizes.at(-1)!]?.control.stats;
    s.rows.push(
      measure(`compiled JS, ${sizes.at(-1)} partitions, no request counting: control bytes published during start()`, 'B', [bytes], {
        note: `the same start with SPS_REQUEST_STATS=0; with counting, stats were ${stats?.msgs ?? 0} msgs, ${stats?.bytes ?? 0} B`,
      }),
    );
  }
  const med = (name: string) => s.rows.find((r) => r.name === name)?.median;
  const last = sizes.at(-1)!;
  const first = sizes[0]!;
  const start = med(`compiled JS, ${last} partitions: start()`);
  const ping = med(`compiled JS, ${last} partitions: requestAll ping`);
  const bytesFirst = med(`compiled JS, ${first} partitions: control bytes published during start()`);
  const bytesLast = med(`compiled JS, ${last} partitions: control bytes published during start()`);
  s.targets.push(
    {
      id: 'scale.start-64',
      target: `embedded start of ${last} partitions (compiled JS) < 5 s`,
      measured: start === undefined ? 'not measured' : `${start.toFixed(0)} ms`,
      met: start === undefined || ctx.quick ? null : start < 5000,
    },
    {
      id: 'scale.ping-64',
      target: `requestAll of a ping over ${last} partitions: median < 10 ms`,
      measured: ping === undefined ? 'not measured' : `${ping.toFixed(2)} ms`,
      met: ping === undefined || ctx.quick ? null : ping < 10,
    },
    {
      id: 'scale.control-linear',
      target: 'control bytes per start grow linearly with partitions (bytes per partition at the largest size within 1.5× of the smallest)',
      measured: perPartition.join('; ') || 'not measured',
      met: bytesFirst === undefined || bytesLast === undefined || ctx.quick ? null : bytesLast / last <= 1.5 * (bytesFirst / first),
    },
  );
}

/**
 * Many partitions on Spark `local[N]`: the library's start() on an application of its own, against
 * a bare Spark job of the same shape (N tasks, submit until all launched) on the same master. The
 * difference, per partition, is set against one Node worker's start (measured by benchmark 3).
 */
export async function manySparkPartitions(ctx: BenchContext, s: SectionResult): Promise<void> {
  const n = ctx.quick ? 4 : 64;
  const master = `local[${n}]`;
  const why = sparkUnavailable();
  if (why) {
    s.skipped.push({ name: `Spark ${master}: start of ${n} partitions`, reason: why });
    return;
  }
  s.settings.sparkManyPartitions = master;
  ctx.log(`  Spark ${master}: bare job of ${n} tasks, then the library with ${n} partitions …`);
  try {
    const shape = await sparkShape(master, { sizes: [n], reps: 1, loadRows: 1000, loadParts: 2 });
    const bare = shape.jobs[String(n)]?.tasks_launched_ms ?? [];
    // The library on an application of its own started beforehand, as the bare job runs in one.
    const app = await SparkApplication.start({ master, conf: { 'spark.ui.enabled': 'false', 'spark.driver.memory': '2g' }, log: false });
    let r;
    try {
      r = await withCluster(
        benchOptions(ctx, {
          spark: app,
          source: { range: { end: n * 100 } },
          partitions: n,
          config: { store: 'discard' },
          startTimeoutMs: 600_000,
          registerTimeoutMs: 600_000,
        }),
        async (cluster) => cluster.requestAll('stats'),
      );
    } finally {
      await app.close();
    }
    s.rows.push(measure(`Spark ${master}: bare job of ${n} tasks, submit until all tasks launched`, 'ms', bare));
    s.rows.push(measure(`Spark ${master}: library start(), ${n} partitions`, 'ms', [r.startMs], { note: 'on a running application, as the bare job' }));
    const failed = [...r.value.values()].filter((x) => !x.ok).length;
    s.notes.push(`Spark ${master}: ${n - failed} of ${n} partitions answered stats; stop() took ${r.stopMs.toFixed(0)} ms.`);
  } catch (err) {
    s.skipped.push({ name: `Spark ${master}: start of ${n} partitions`, reason: reasonOf(err) });
  }
}
