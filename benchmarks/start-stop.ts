/**
 * Benchmark 3 — start and stop: start() until every partition serves, stop() until results are
 * assembled, for 2, 4 and 8 partitions with the embedded launcher; the parts of an embedded start
 * measured alone; and bare Spark jobs of the same shape (local mode and a standalone cluster).
 */
import { existsSync } from 'node:fs';
import { startNatsServer } from '../src/transport/nats-server.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { compiledImportMs, compiledProbe, ensureCompiled } from './lib/compiled.js';
import { runToEnd } from './lib/proc.js';
import { sparkShape, startStandalone, type SparkShapeOut } from './lib/spark-shape.js';
import { ROOT, sparkUnavailable } from './lib/spark.js';
import { measure } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';

const PROBE = new URL('./servers/import-probe.ts', import.meta.url).pathname;

/** Settings of the Spark shape runs shared with the load-rate benchmark. */
export function shapeSettings(quick: boolean) {
  return { sizes: quick ? [2] : [2, 4, 8], reps: quick ? 2 : 5, loadRows: quick ? 20_000 : 1_000_000, loadParts: 4 };
}

/** Whether the concurrent Spark launcher exists yet (it is not wired into these benchmarks). */
export function sparkLauncherPresent(): boolean {
  return existsSync(`${ROOT}src/spark/spark-launcher.ts`);
}

export default async function startStop(ctx: BenchContext): Promise<SectionResult> {
  const sizes = ctx.quick ? [2] : [2, 4, 8];
  const reps = ctx.quick ? 1 : 5;
  const rows = 10_000;
  const s = section('start-stop', '3. Start and stop', { sizes, reps, rows, sparkLocalMaster: 'local[8]', standaloneWorkerCores: 8 });
  const ms = (name: string, samples: number[], note?: string) => s.rows.push(measure(name, 'ms', samples, note ? { note } : {}));

  for (const n of sizes) {
    const starts: number[] = [];
    const stops: number[] = [];
    for (let r = 0; r < reps; r++) {
      ctx.log(`  embedded start/stop ${n} partitions, ${r + 1}/${reps} …`);
      const res = await withCluster(benchOptions(ctx, { data: { range: { end: rows } }, partitions: n, config: { store: 'columns' } }), async (c) => {
        if (c.result().size !== 0) throw new Error('results before stop');
        return c;
      });
      if (res.value.result().size !== n) throw new Error(`stop() assembled ${res.value.result().size} results, expected ${n}`);
      starts.push(res.startMs);
      stops.push(res.stopMs);
    }
    ms(`embedded start(), ${n} partitions`, starts, 'start() until all serving');
    ms(`embedded stop(), ${n} partitions`, stops, 'stop() until results assembled');
  }

  // The parts of an embedded start, each alone.
  const natsUp: number[] = [];
  const nodeUp: number[] = [];
  const importUp: number[] = [];
  const importInside: number[] = [];
  for (let r = 0; r < (ctx.quick ? 1 : 5); r++) {
    let t0 = performance.now();
    const nats = await startNatsServer();
    natsUp.push(performance.now() - t0);
    await nats.stop();
    t0 = performance.now();
    await runToEnd(process.execPath, ['-e', '0'], 30_000);
    nodeUp.push(performance.now() - t0);
    t0 = performance.now();
    const probe = await runToEnd(process.execPath, ['--import', 'tsx', PROBE], 60_000);
    importUp.push(performance.now() - t0);
    const m = /IMPORTED ([\d.]+)/.exec(probe.stdout);
    if (m) importInside.push(Number(m[1]));
  }
  ms('part: nats-server start until ready', natsUp);
  ms('part: node process spawn to exit (node -e 0)', nodeUp);
  ms('part: worker process with tsx, import library + server, exit', importUp, 'what each worker pays before its rows');
  ms('part: of which importing library + server modules', importInside, 'tsx transpiles TypeScript at import');

  // The same with the library compiled to JavaScript (as published) and a JavaScript server: no tsx.
  try {
    ctx.log('  compiling the project for the no-tsx runs …');
    await ensureCompiled();
    const wall: number[] = [];
    const inside: number[] = [];
    for (let r = 0; r < (ctx.quick ? 1 : 5); r++) {
      const c = await compiledImportMs();
      wall.push(c.wallMs);
      inside.push(c.importMs);
    }
    ms('part: worker process, compiled JS (no tsx), import library + server, exit', wall);
    ms('part: of which importing compiled library + server modules', inside);
    ctx.log('  embedded start/stop with the compiled library …');
    const probe = await compiledProbe(sizes, reps);
    for (const n of sizes) {
      ms(`compiled JS: embedded start(), ${n} partitions`, probe.start[n] ?? [], 'library as published (dist/*.js), JS server module');
      ms(`compiled JS: embedded stop(), ${n} partitions`, probe.stop[n] ?? []);
    }
  } catch (err) {
    s.skipped.push({ name: 'compiled-JS start/stop', reason: (err as Error).message });
  }

  const unavailable = ctx.quick ? 'quick mode' : sparkUnavailable();
  const launcherNote = sparkLauncherPresent()
    ? 'src/spark/spark-launcher.ts exists but is not wired into the benchmark yet'
    : 'spark launcher not available (src/spark/spark-launcher.ts is being written)';
  s.skipped.push({ name: 'library start/stop on Spark (local, standalone) and library-over-Spark share', reason: launcherNote });
  let local: SparkShapeOut | undefined;
  if (unavailable) s.skipped.push({ name: 'bare Spark jobs', reason: unavailable });
  else {
    const shape = shapeSettings(ctx.quick);
    const addShape = (label: string, out: SparkShapeOut, upExtra?: number) => {
      ms(`${label}: spark-submit until SparkContext`, [out.context_ms]);
      ms(`${label}: spark-submit until executors registered`, [out.app_up_ms], upExtra !== undefined ? `cluster daemons were up in ${upExtra.toFixed(0)} ms before` : 'local mode: the driver is the executor');
      ms(`${label}: first job (starts Python workers)`, [out.first_job_ms]);
      for (const [n, j] of Object.entries(out.jobs)) {
        ms(`${label}: job of ${n} tasks, submit until all tasks launched`, j.tasks_launched_ms.slice(1), 'first job excluded');
        ms(`${label}: job of ${n} tasks (50 ms each), submit until done`, j.job_done_ms.slice(1), 'first job excluded');
      }
      ms(`${label}: SparkContext.stop()`, [out.stop_ms]);
    };
    try {
      ctx.log('  spark-submit local[8] shape_bench.py …');
      local = await sparkShape('local[8]', shape);
      s.settings.sparkVersion = local.spark_version;
      addShape('Spark local[8]', local);
    } catch (err) {
      s.skipped.push({ name: 'bare Spark jobs, local mode', reason: (err as Error).message });
    }
    try {
      ctx.log('  Spark standalone master + worker …');
      const cluster = await startStandalone(8);
      try {
        ctx.log(`  spark-submit ${cluster.url} shape_bench.py …`);
        addShape('Spark standalone', await sparkShape(cluster.url, { ...shape, loadRows: 1000 }), cluster.upMs);
      } finally {
        await cluster.stop();
      }
    } catch (err) {
      s.skipped.push({ name: 'bare Spark jobs, standalone cluster', reason: (err as Error).message });
    }
  }

  for (const [prefix, label] of [['', 'from TypeScript sources (tsx in every worker)'], ['compiled JS: ', 'compiled JS, as published']] as const) {
    const start8 = s.rows.find((r) => r.name === `${prefix}embedded start(), 8 partitions`)?.median;
    s.targets.push({
      id: `start.embedded-8${prefix ? '-compiled' : ''}`,
      target: `embedded start of 8 partitions: median < 1 s (${label})`,
      measured: start8 === undefined ? 'not measured (quick mode)' : `${start8.toFixed(0)} ms`,
      met: start8 === undefined ? null : start8 < 1000,
    });
  }
  s.targets.push({ id: 'start.over-spark', target: 'library adds < 300 ms over a bare Spark job of the same shape', measured: `not measured: ${launcherNote}`, met: null });
  return s;
}
