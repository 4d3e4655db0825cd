/**
 * Benchmark: partitions as processes vs as threads of one partition host (option `isolation`),
 * compiled library, both modes alternating in one run: embedded start()/stop() of 8 and 64
 * partitions, RSS per idle partition at 64, one partition's request latency and throughput; then 256
 * partitions as threads only (start, one `requestAll` ping, stop, RSS per partition).
 */
import { ensureCompiled, runProbe } from './lib/compiled.js';
import { measure } from './lib/timing.js';
import { isSmoke, section, type BenchContext, type SectionResult } from './lib/types.js';
import type { IsolationOut } from './isolation-probe.js';

export default async function isolation(ctx: BenchContext): Promise<SectionResult> {
  // A smoke run (the test suite's) stops at the first figure, a start of two partitions: the
  // probe starts and stops both modes only (no idle or latency clusters).
  const smoke = isSmoke();
  const sizes = smoke ? [2] : ctx.quick ? [8] : [8, 64];
  const reps = 1;
  const idle = smoke ? 0 : ctx.quick ? 8 : 64;
  const requests = smoke ? 0 : ctx.quick ? 200 : 2000;
  const threadOnly = smoke || ctx.quick ? [] : [256];
  const s = section('isolation', 'Partitions as processes vs threads (isolation), compiled library', {
    sizes,
    reps,
    idlePartitions: idle,
    requests,
    threadOnly,
  });
  await ensureCompiled();
  const out = await runProbe<IsolationOut>(
    'isolation-probe.js',
    [sizes.join(','), String(reps), String(idle), String(requests), threadOnly.join(',')],
    2_400_000,
  );
  for (const [what, why] of Object.entries(out.failed)) s.skipped.push({ name: what, reason: why });
  for (const n of sizes) {
    for (const m of ['process', 'thread']) {
      if (!out.start[m]![n]!.length) continue;
      s.rows.push(measure(`embedded start() of ${n} partitions, ${m}`, 'ms', out.start[m]![n]!));
      s.rows.push(measure(`embedded stop() of ${n} partitions, ${m}`, 'ms', out.stop[m]![n]!));
    }
  }
  for (const m of ['process', 'thread']) {
    if (out.rssPerPartition[m] === undefined) continue;
    s.rows.push(
      measure(`RSS per partition, ${idle} idle partitions, ${m}`, 'MB', [out.rssPerPartition[m]!], {
        note: m === 'thread' ? 'host RSS / partitions' : 'sum of worker RSS / partitions',
      }),
    );
  }
  for (const m of ['process', 'thread'])
    if (out.latency[m]) s.rows.push(measure(`request latency to one partition (NATS, sequential), ${m}`, 'ms', out.latency[m]!));
  for (const m of ['process', 'thread'])
    if (out.throughput[m]?.length)
      s.rows.push(
        measure(`throughput of one partition (NATS, 64 in flight), ${m}`, 'req/s', out.throughput[m]!, {
          note: 'one figure per round; rounds alternate the modes',
        }),
      );
  for (const [n, r] of Object.entries(out.threadOnly)) {
    const rows: [string, string, number][] = [
      [`embedded start() of ${n} partitions, thread`, 'ms', r.start],
      [`requestAll ping of ${n} partitions, thread`, 'ms', r.ping],
      [`embedded stop() of ${n} partitions, thread`, 'ms', r.stop],
      [`RSS per partition, ${n} partitions after a ping, thread`, 'MB', r.rssPerPartition],
    ];
    // A figure not reached (the run failed before it) is left out; the failure is listed as skipped.
    for (const [name, unit, v] of rows) if (Number.isFinite(v)) s.rows.push(measure(name, unit, [v]));
  }
  const median = (name: string): number | undefined => s.rows.find((r) => r.name === name)?.median;
  for (const [n, goal] of [
    [8, 500],
    [64, 3000],
  ] as const) {
    const m = median(`embedded start() of ${n} partitions, thread`);
    s.targets.push({
      id: `isolation.start-${n}`,
      target: `embedded start() of ${n} partitions, thread: < ${goal} ms`,
      measured: m === undefined ? 'not measured' : `${m.toFixed(0)} ms`,
      met: m === undefined ? null : m < goal,
    });
  }
  const rss = out.rssPerPartition.thread;
  s.targets.push({
    id: 'isolation.rss',
    target: `RSS per idle partition at ${idle}, thread: < 20 MB`,
    measured: `${rss?.toFixed(1)} MB`,
    met: rss === undefined ? null : rss < 20,
  });
  const [lp, lt] = [
    median('request latency to one partition (NATS, sequential), process'),
    median('request latency to one partition (NATS, sequential), thread'),
  ];
  if (lp !== undefined && lt !== undefined) {
    s.targets.push({
      id: 'isolation.latency',
      target: 'request latency, thread within 5% of process',
      measured: `${lt.toFixed(3)} vs ${lp.toFixed(3)} ms`,
      met: lt <= lp * 1.05,
    });
  }
  const [tp, tt] = [median('throughput of one partition (NATS, 64 in flight), process'), median('throughput of one partition (NATS, 64 in flight), thread')];
  if (tp !== undefined && tt !== undefined) {
    s.targets.push({
      id: 'isolation.throughput',
      target: 'one-partition throughput, thread within 5% of process',
      measured: `${tt.toFixed(0)} vs ${tp.toFixed(0)} req/s`,
      met: tt >= tp * 0.95,
    });
  }
  return s;
}
