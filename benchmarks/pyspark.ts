/**
 * From PySpark vs from TypeScript (issue 17), both sides in one run on the same data (a SQL
 * DataFrame in 4 partitions, read as Arrow by the bench server) and the same Spark settings on
 * local[4]: `start()` of the Python package's Cluster on the user's own session (with its own
 * application, and on one attached once) against the TypeScript Cluster on a SparkApplication; the load rate of the user's DataFrame against the `sql`
 * source, measured inside the partition server; and a request's round trip from Python against one
 * from TypeScript. Spark only: skipped in quick runs unless `--spark`.
 */
import { fileURLToPath } from 'node:url';
import type { ServerStats } from './servers/bench-server.js';
import { BENCH_SERVER, benchOptions, withCluster } from './lib/cluster.js';
import { runToEnd } from './lib/proc.js';
import { ROOT, sparkEnv, sparkUnavailable, VENV_PYTHON } from './lib/spark.js';
import { BENCH_SPARK_CONF, withSparkApp } from './lib/spark-app.js';
import { summarize } from './lib/stats.js';
import { measure } from './lib/timing.js';
import { reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';

interface PythonOut {
  startMs: number[];
  /** Starts on one application attached once (`attach(spark)`), taken in turns with `startMs`. */
  attachedStartMs?: number[];
  loadRowsPerS: number[];
  requestMs: number[];
}

const PARTITIONS = 4;
const sql = (rows: number) => `SELECT id, CAST((id * 7919) % 1000 AS INT) AS v FROM range(0, ${rows}, 1, ${PARTITIONS})`;

export default async function pyspark(ctx: BenchContext): Promise<SectionResult> {
  const quick = ctx.quick;
  const rows = quick ? 100_000 : 4_000_000;
  const reps = quick ? 1 : 5;
  const requests = quick ? 50 : 500;
  const s = section('pyspark', 'From PySpark vs from TypeScript: start, load rate, request round trip (Spark local[4])', {
    rows,
    partitions: PARTITIONS,
    timedStarts: reps,
    requests,
    master: 'local[4]',
    read: 'rows.arrow(), rows discarded',
  });
  const unavailable = quick && !ctx.sparkInQuick ? 'quick mode (add --spark to run it at quick sizes)' : sparkUnavailable();
  if (unavailable) {
    s.skipped.push({ name: 'PySpark vs TypeScript', reason: unavailable });
    return s;
  }
  const ts: PythonOut = { startMs: [], loadRowsPerS: [], requestMs: [] };
  try {
    ctx.log('  TypeScript: a SparkApplication on local[4] …');
    await withSparkApp('local[4]', ctx.log, async (app) => {
      for (let run = 0; run <= reps; run++) {
        ctx.log(`  TypeScript: start ${run}/${reps} (run 0 warms up) …`);
        const { startMs } = await withCluster(
          benchOptions(ctx, { spark: app, source: { sql: sql(rows) }, partitions: PARTITIONS, format: 'arrow', config: { store: 'discard', read: 'arrow' } }),
          async (cluster) => {
            const stats: ServerStats[] = [];
            for (const [p, r] of await cluster.requestAll<ServerStats>('stats')) {
              if (!r.ok) throw new Error(`stats of partition ${p}: ${r.error.message}`);
              stats.push(r.value);
            }
            if (stats.reduce((n, st) => n + st.rows, 0) !== rows) throw new Error(`loaded ${stats.map((st) => st.rows).join('+')} rows, expected ${rows}`);
            if (run === 0) {
              for (let i = 0; i < Math.min(requests, 200); i++) await cluster.request(i % PARTITIONS, 'stats');
              return;
            }
            ts.loadRowsPerS.push(...stats.map((st) => (st.rows / st.loadMs) * 1000));
            if (run === reps) {
              for (let i = 0; i < requests; i++) {
                const t0 = performance.now();
                await cluster.request(i % PARTITIONS, 'stats');
                ts.requestMs.push(performance.now() - t0);
              }
            }
          },
        );
        if (run > 0) ts.startMs.push(startMs);
      }
    });
  } catch (err) {
    s.skipped.push({ name: 'TypeScript side', reason: reasonOf(err) });
  }
  let py: PythonOut | undefined;
  try {
    ctx.log(`  PySpark: the Python package on its own session (local[4]), ${reps} starts …`);
    const script = fileURLToPath(new URL('./spark/pyspark_bench.py', import.meta.url));
    // The same SQL text as the TypeScript side: one definition of the data.
    const args = [script, fileURLToPath(BENCH_SERVER), sql(rows), rows, PARTITIONS, reps, requests, JSON.stringify(BENCH_SPARK_CONF)].map(String);
    const r = await runToEnd(VENV_PYTHON, args, 600_000, { ...sparkEnv(), SPS_NODE_PACKAGE: ROOT });
    const line = r.stdout.split('\n').find((l) => l.startsWith('SPS-BENCH '));
    if (r.code !== 0 || !line) throw new Error(`pyspark_bench.py exited with ${r.code}: ${r.stderr.slice(-2000)}`);
    py = JSON.parse(line.slice('SPS-BENCH '.length)) as PythonOut;
  } catch (err) {
    s.skipped.push({ name: 'PySpark side', reason: reasonOf(err) });
  }
  const side = (label: string, o: PythonOut | undefined, note: string) => {
    if (!o) return;
    s.rows.push(measure(`${label}: start(), ${PARTITIONS} partitions`, 'ms', o.startMs, { note }));
    s.rows.push(measure(`${label}: load rate per partition (rows.arrow())`, 'rows/s', o.loadRowsPerS, { higherIsBetter: true }));
    s.rows.push(measure(`${label}: request round trip`, 'ms', o.requestMs));
  };
  side(
    'TypeScript, sql source',
    ts.startMs.length ? ts : undefined,
    'Cluster on a SparkApplication (spark-submit of the runner, started once); workers run the .ts server with tsx',
  );
  side(
    'PySpark, user DataFrame',
    py,
    "Cluster on the user's session, its own application (Node driver, bus, runner) started with it; workers run the .ts server compiled",
  );
  if (py?.attachedStartMs?.length) {
    s.rows.push(
      measure(`PySpark, user DataFrame, attached application: start(), ${PARTITIONS} partitions`, 'ms', py.attachedStartMs, {
        note: 'Cluster on an application attached once (attach(spark)), as the TypeScript side runs on a SparkApplication started once',
      }),
    );
  }
  const med = (xs: number[]) => summarize(xs).median;
  const both = py && ts.startMs.length > 0;
  s.targets.push(
    {
      id: 'pyspark.start',
      target: 'start() of 4 partitions from PySpark within +300 ms of the TypeScript driver (both on an application started once)',
      measured:
        both && py!.attachedStartMs?.length
          ? `${med(py!.attachedStartMs).toFixed(0)} ms vs ${med(ts.startMs).toFixed(0)} ms (with a new application each start: ${med(py!.startMs).toFixed(0)} ms)`
          : 'not measured',
      met: both && py!.attachedStartMs?.length ? med(py!.attachedStartMs) - med(ts.startMs) <= 300 : null,
    },
    {
      id: 'pyspark.load',
      target: "load rate of the user's DataFrame ≥ 90% of the sql source's, per partition",
      measured: both ? `${((med(py!.loadRowsPerS) / med(ts.loadRowsPerS)) * 100).toFixed(0)}%` : 'not measured',
      met: both ? med(py!.loadRowsPerS) >= 0.9 * med(ts.loadRowsPerS) : null,
    },
    {
      id: 'pyspark.request',
      target: 'request round trip from Python within 2× of TypeScript',
      measured: both ? `${med(py!.requestMs).toFixed(2)} ms vs ${med(ts.requestMs).toFixed(2)} ms` : 'not measured',
      met: both ? med(py!.requestMs) <= 2 * med(ts.requestMs) : null,
    },
  );
  return s;
}
