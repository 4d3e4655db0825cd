/**
 * Benchmark 3 — start and stop: start() until every partition serves, stop() until results are
 * assembled, for 2, 4 and 8 partitions with the embedded launcher (from TypeScript sources, and
 * compiled JS as published); the parts of an embedded start measured alone; the library on Spark
 * (one shared application on local[8], then on a standalone cluster); and bare Spark jobs of the
 * same shape, whose submit-until-launched time is subtracted from the library's start.
 */
import { startNatsServer } from '../src/transport/nats-server.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { compiledImportMs, compiledProbe, ensureCompiled, runCompiledProbe } from './lib/compiled.js';
import { runToEnd } from './lib/proc.js';
import { sparkShape, startStandalone, type SparkShapeOut } from './lib/spark-shape.js';
import type { SparkApplication } from '../src/index.js';
import { sparkUnavailable } from './lib/spark.js';
import { withSparkApp } from './lib/spark-app.js';
import { measure } from './lib/timing.js';
import { reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';

const PROBE = new URL('./servers/import-probe.ts', import.meta.url).pathname;

/** Settings of the Spark shape runs shared with the load-rate benchmark. */
export function shapeSettings(quick: boolean) {
  return { sizes: quick ? [2] : [2, 4, 8], reps: quick ? 2 : 5, loadRows: quick ? 20_000 : 1_000_000, loadParts: 4 };
}

export default async function startStop(ctx: BenchContext): Promise<SectionResult> {
  const sizes = ctx.quick ? [2] : [2, 4, 8];
  const reps = ctx.quick ? 1 : 5;
  const rows = 10_000;
  const s = section('start-stop', '3. Start and stop', {
    sizes,
    reps,
    rows,
    sparkLocalMaster: 'local[8]',
    standaloneWorkerCores: 8,
    sparkRepsTsx: ctx.quick ? 1 : 3,
    sparkRepsStandalone: 2,
    sparkRepsCompiled: reps,
  });
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
    ms(`embedded start(), ${n} partitions`, starts, 'library and server from TypeScript sources, compiled by the driver; start() until all serving');
    ms(`embedded stop(), ${n} partitions`, stops, 'library and server from TypeScript sources; stop() until results assembled');
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
  ms('part: worker process with tsx, import library + server, exit', importUp, 'what each worker paid before the driver compiled the server (for comparison)');
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
      ms(`compiled JS: embedded start(), ${n} partitions`, probe.start[n] ?? [], 'compiled JS as published (dist/*.js, no tsx), JS server module');
      ms(`compiled JS: embedded stop(), ${n} partitions`, probe.stop[n] ?? []);
      ms(
        `compiled JS, TypeScript server: embedded start(), ${n} partitions`,
        probe.startTs[n] ?? [],
        'the same server in TypeScript, compiled by the driver; alternated with the JS server',
      );
      ms(`compiled JS, TypeScript server: embedded stop(), ${n} partitions`, probe.stopTs[n] ?? []);
    }
    ms('compile of the TypeScript server, empty cache', probe.compileMissMs, 'esbuild, once per run when a source changed');
    ms('compile of the TypeScript server, cached', probe.compileHitMs, 'every input re-hashed; no esbuild run');
    ms(
      'compile of the TypeScript server inlined with the worker, the library and its packages, empty cache',
      probe.compileInlineMissMs,
      'what a run of processes on one machine, or of threads, compiles',
    );
  } catch (err) {
    s.skipped.push({ name: 'compiled-JS start/stop', reason: reasonOf(err) });
  }

  const unavailable = ctx.quick ? 'quick mode' : sparkUnavailable();
  const shape = shapeSettings(ctx.quick);
  // Library starts on Spark take seconds each: fewer repetitions.
  const sparkReps = ctx.quick ? 1 : 3;
  /** Library start/stop on a shared Spark application: one untimed warm-up run, then the sizes. */
  const librarySpark = async (label: string, app: SparkApplication, reps: number): Promise<void> => {
    ctx.log(`  ${label}: warm-up run (starts Spark's Python workers) …`);
    await withCluster(benchOptions(ctx, { spark: app, source: { range: { end: rows } }, partitions: 2, config: { store: 'columns' } }), async () => {});
    for (const n of sizes) {
      const starts: number[] = [];
      const stops: number[] = [];
      for (let r = 0; r < reps; r++) {
        ctx.log(`  ${label}: library start/stop ${n} partitions, ${r + 1}/${reps} …`);
        const res = await withCluster(
          benchOptions(ctx, { spark: app, source: { range: { end: rows } }, partitions: n, config: { store: 'columns' } }),
          async (c) => c,
        );
        if (res.value.result().size !== n) throw new Error(`stop() assembled ${res.value.result().size} results, expected ${n}`);
        starts.push(res.startMs);
        stops.push(res.stopMs);
      }
      ms(
        `${label}: library start(), ${n} partitions`,
        starts,
        'shared application; start() until all serving (library from TypeScript sources, compiled by the driver)',
      );
      ms(`${label}: library stop(), ${n} partitions`, stops, 'stop() until results assembled');
    }
  };
  const addShape = (label: string, out: SparkShapeOut, upExtra?: number) => {
    ms(`${label}: spark-submit until SparkContext`, [out.context_ms]);
    ms(
      `${label}: spark-submit until executors registered`,
      [out.app_up_ms],
      upExtra !== undefined ? `cluster daemons were up in ${upExtra.toFixed(0)} ms before` : 'local mode: the driver is the executor',
    );
    ms(`${label}: first job (starts Python workers)`, [out.first_job_ms]);
    for (const [n, j] of Object.entries(out.jobs)) {
      ms(`${label}: bare job of ${n} tasks, submit until all tasks launched`, j.tasks_launched_ms.slice(1), 'first job excluded');
      ms(`${label}: bare job of ${n} tasks (50 ms each), submit until done`, j.job_done_ms.slice(1), 'first job excluded');
    }
    ms(`${label}: SparkContext.stop()`, [out.stop_ms]);
  };
  if (unavailable) s.skipped.push({ name: 'Spark: library start/stop and bare Spark jobs (local, standalone)', reason: unavailable });
  else {
    try {
      ctx.log('  Spark application on local[8] for the library runs …');
      await withSparkApp('local[8]', ctx.log, async (app, upMs) => {
        s.settings.sparkVersion = app.info.sparkVersion;
        ms('Spark local[8]: SparkApplication.start() (spark-submit until runner ready)', [upMs], 'paid once per application, not per run');
        await librarySpark('Spark local[8]', app, sparkReps);
      });
    } catch (err) {
      s.skipped.push({ name: 'library start/stop on Spark local[8]', reason: reasonOf(err) });
    }
    try {
      ctx.log('  compiled JS: library start/stop on a shared Spark local[8] application …');
      await ensureCompiled();
      const probe = await runCompiledProbe(sizes, reps, 'local[8]');
      if (probe.sparkThreadSkipped) s.skipped.push({ name: 'compiled JS, thread: library start/stop on Spark local[8]', reason: probe.sparkThreadSkipped });
      for (const n of sizes) {
        ms(`compiled JS: Spark local[8]: library start(), ${n} partitions`, probe.sparkStart[n] ?? [], 'compiled JS as published (no tsx); shared application');
        ms(`compiled JS: Spark local[8]: library stop(), ${n} partitions`, probe.sparkStop[n] ?? []);
        if (probe.sparkStartThread[n]?.length) {
          ms(
            `compiled JS, thread: Spark local[8]: library start(), ${n} partitions`,
            probe.sparkStartThread[n] ?? [],
            "isolation: 'thread' (one partition host on the executor); alternated with the row above",
          );
          ms(`compiled JS, thread: Spark local[8]: library stop(), ${n} partitions`, probe.sparkStopThread[n] ?? []);
        }
      }
    } catch (err) {
      s.skipped.push({ name: 'compiled JS: library start/stop on Spark local[8]', reason: reasonOf(err) });
    }
    try {
      ctx.log('  spark-submit local[8] shape_bench.py …');
      addShape('Spark local[8]', await sparkShape('local[8]', shape));
    } catch (err) {
      s.skipped.push({ name: 'bare Spark jobs, local mode', reason: reasonOf(err) });
    }
    try {
      ctx.log('  Spark standalone master + worker (8 cores) …');
      const cluster = await startStandalone(8);
      try {
        ctx.log(`  spark-submit ${cluster.url} shape_bench.py …`);
        addShape('Spark standalone', await sparkShape(cluster.url, { ...shape, loadRows: 1000 }), cluster.upMs);
        ctx.log(`  Spark application on ${cluster.url} for the library runs …`);
        await withSparkApp(cluster.url, ctx.log, async (app, upMs) => {
          ms('Spark standalone: SparkApplication.start() (spark-submit until runner ready)', [upMs], 'paid once per application, not per run');
          await librarySpark('Spark standalone', app, 2);
        });
      } finally {
        await cluster.stop();
      }
    } catch (err) {
      s.skipped.push({ name: 'Spark standalone cluster (library and bare jobs)', reason: reasonOf(err) });
    }
  }

  for (const [prefix, label] of [
    ['', 'library from TypeScript sources, compiled by the driver'],
    ['compiled JS: ', 'compiled JS, as published'],
  ] as const) {
    const start8 = s.rows.find((r) => r.name === `${prefix}embedded start(), 8 partitions`)?.median;
    s.targets.push({
      id: `start.embedded-8${prefix ? '-compiled' : ''}`,
      target: `embedded start of 8 partitions: median < 1 s (${label})`,
      measured: start8 === undefined ? 'not measured (quick mode)' : `${start8.toFixed(0)} ms`,
      met: start8 === undefined ? null : start8 < 1000,
    });
  }
  const js8 = s.rows.find((r) => r.name === 'compiled JS: embedded start(), 8 partitions')?.median;
  const ts8 = s.rows.find((r) => r.name === 'compiled JS, TypeScript server: embedded start(), 8 partitions')?.median;
  s.targets.push({
    id: 'start.embedded-8-typescript',
    target: 'embedded start of 8 partitions with a TypeScript server: median < 1 s and within 10% of the JS server (compiled library)',
    measured:
      ts8 === undefined || js8 === undefined
        ? 'not measured (quick mode)'
        : `${ts8.toFixed(0)} ms vs ${js8.toFixed(0)} ms (${((ts8 / js8 - 1) * 100).toFixed(1)}%)`,
    met: ts8 === undefined || js8 === undefined ? null : ts8 < 1000 && ts8 <= js8 * 1.1,
  });
  // Library start on a shared application minus a bare job of the same shape (submit until all
  // its tasks launched), per master and size.
  const med = (name: string) => s.rows.find((r) => r.name === name)?.median;
  const overhead = (label: string, bareLabel: string): { text: string[]; worst?: number } => {
    const text: string[] = [];
    let worst: number | undefined;
    for (const n of sizes) {
      const lib = med(`${label}: library start(), ${n} partitions`);
      const bare = med(`${bareLabel}: bare job of ${n} tasks, submit until all tasks launched`);
      if (lib === undefined || bare === undefined || !Number.isFinite(lib)) continue;
      const d = lib - bare;
      s.rows.push(
        measure(`${label}: library overhead over a bare job, ${n} partitions`, 'ms', [d], {
          note: 'median library start() minus median bare submit-until-launched',
        }),
      );
      text.push(`${n}p ${d.toFixed(0)} ms`);
      worst = Math.max(worst ?? d, d);
    }
    return { text, worst };
  };
  const tsxLocal = overhead('Spark local[8]', 'Spark local[8]');
  const tsxStandalone = overhead('Spark standalone', 'Spark standalone');
  const compiledLocal = overhead('compiled JS: Spark local[8]', 'Spark local[8]');
  const threadLocal = overhead('compiled JS, thread: Spark local[8]', 'Spark local[8]');
  const tsx = med('part: worker process with tsx, import library + server, exit');
  const plain = med('part: worker process, compiled JS (no tsx), import library + server, exit');
  if (tsxLocal.worst !== undefined && tsx !== undefined) {
    s.notes.push(
      `"Spark …: library start()" rows run the library from its TypeScript sources, compiled by the driver (like the embedded rows); "compiled JS: …" rows use the library as published. One worker process alone would take ${tsx.toFixed(0)} ms to spawn and import with tsx, ${plain?.toFixed(0) ?? '?'} ms compiled, and ${sizes.at(-1)} workers share 2 cores.`,
    );
  }
  // Where the compiled overhead goes: the same worker processes as an embedded start, plus what
  // is Spark-specific (submit request, source, Python task spawning the worker, rows as JSON).
  const split: string[] = [];
  for (const n of sizes) {
    const lib = med(`compiled JS: Spark local[8]: library start(), ${n} partitions`);
    const emb = med(`compiled JS: embedded start(), ${n} partitions`);
    const bare = med(`Spark local[8]: bare job of ${n} tasks, submit until all tasks launched`);
    if (lib === undefined || emb === undefined || bare === undefined || !Number.isFinite(lib)) continue;
    s.rows.push(
      measure(`compiled JS: Spark local[8]: start minus embedded start minus bare launch, ${n} partitions`, 'ms', [lib - emb - bare], {
        note: 'the Spark-specific share of the library',
      }),
    );
    split.push(`${n}p: ${lib.toFixed(0)} = bare launch ${bare.toFixed(0)} + embedded start ${emb.toFixed(0)} + ${(lib - emb - bare).toFixed(0)}`);
  }
  if (split.length > 0)
    s.notes.push(
      `compiled JS on Spark local[8], start() in ms = bare Spark launch + the embedded start of the same partitions (worker processes) + a Spark-specific rest: ${split.join('; ')}.`,
    );
  const targets: [string, string, { text: string[]; worst?: number }[]][] = [
    ['start.over-spark', 'compiled JS, as published', [compiledLocal]],
    ['start.over-spark-thread', "compiled JS, isolation: 'thread'", [threadLocal]],
    ['start.over-spark-tsx', 'library from TypeScript sources, compiled by the driver', [tsxLocal, tsxStandalone]],
  ];
  for (const [id, label, parts] of targets) {
    const worsts = parts.map((p) => p.worst).filter((w): w is number => w !== undefined);
    const text = parts
      .map((p, i) => (p.text.length ? `${id === 'start.over-spark-tsx' ? ['local[8]', 'standalone'][i] : 'local[8]'}: ${p.text.join(', ')}` : ''))
      .filter(Boolean)
      .join('; ');
    s.targets.push({
      id,
      target: `library adds < 300 ms over a bare Spark job of the same shape (${label})`,
      measured: worsts.length ? text : `not measured${unavailable ? ` (${unavailable})` : ''}`,
      met: worsts.length ? Math.max(...worsts) < 300 : null,
    });
  }
  return s;
}
