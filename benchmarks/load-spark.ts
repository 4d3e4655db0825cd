/**
 * Benchmark 4, Spark part: rows from a Spark SQL source into initPartition, measured inside the
 * partition server, three ways in one Spark application on the same data: today's JSON rows
 * (`format: 'rows'`), Arrow turned into plain objects (`rows.batches()`), and Arrow record
 * batches as they arrive (`rows.arrow()`); against a bare Spark Python task iterating its
 * partition. Also the peak RSS of a worker reading a ~1 GB partition as Arrow and discarding it.
 */
import type { SparkApplication, SparkSource } from '../src/index.js';
import type { BenchConfig, ServerStats } from './servers/bench-server.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { sparkShape } from './lib/spark-shape.js';
import { withSparkApp } from './lib/spark-app.js';
import { measure } from './lib/timing.js';
import { reasonOf, type BenchContext, type SectionResult } from './lib/types.js';
import { shapeSettings } from './start-stop.js';

/** Bytes of one `{id, v, payload}` row's values: a long, an int, and the payload. */
const KB_ROW_BYTES = 8 + 4 + 1000;

const sql = (n: number, payload: boolean, parts = 4): SparkSource => ({
  sql: `SELECT id, CAST((id * 7919) % 1000 AS INT) AS v${payload ? `, repeat('x', 1000) AS payload` : ''} FROM range(0, ${n}, 1, ${parts})`,
});

/** The ways a Spark DataFrame's rows can reach initPartition. */
const PATHS: { label: string; format: 'arrow' | 'rows'; read: NonNullable<BenchConfig['read']>; note: string }[] = [
  {
    label: 'JSON rows (format: rows), rows.batches()',
    format: 'rows',
    read: 'batches',
    note: 'rows rendered as JSON by the JVM (to_json), framed by the Python task',
  },
  {
    label: 'Arrow, rows.batches() (plain objects)',
    format: 'arrow',
    read: 'batches',
    note: 'Arrow record batches from the JVM, objects made per batch in the worker',
  },
  {
    label: 'Arrow, rows.arrow() (record batches)',
    format: 'arrow',
    read: 'arrow',
    note: 'Arrow record batches from the JVM, passed through the Python task unchanged',
  },
];

/** Loads `source` once; returns every partition's stats, checking the row count. */
async function load(
  ctx: BenchContext,
  app: SparkApplication,
  source: SparkSource,
  partitions: number,
  expected: number,
  o: Partial<BenchConfig> & { format?: 'arrow' | 'rows' },
) {
  const { format, ...config } = o;
  const { value } = await withCluster(
    benchOptions(ctx, { spark: app, source, partitions, format, config: { store: 'discard', ...config } }),
    async (cluster) => {
      const stats: ServerStats[] = [];
      for (const [p, rep] of await cluster.requestAll<ServerStats>('stats')) {
        if (!rep.ok) throw new Error(`stats of partition ${p}: ${rep.error.message}`);
        stats.push(rep.value);
      }
      return stats;
    },
  );
  const total = value.reduce((n, st) => n + st.rows, 0);
  if (total !== expected) throw new Error(`loaded ${total} rows, expected ${expected}`);
  return value;
}

/** Adds the Spark rows, notes and targets of the load section to `s`. */
export async function sparkCases(ctx: BenchContext, s: SectionResult, quick: boolean): Promise<void> {
  const small = quick ? 200_000 : 1_000_000;
  const kb = quick ? 40_000 : 200_000;
  const bigRows = quick ? 100_000 : 1_000_000;
  const reps = quick ? 1 : 2;
  Object.assign(s.settings, { sparkSmallRows: small, sparkKbRows: kb, sparkReps: reps, sparkBigPartitionRows: bigRows, sparkMaster: 'local[4]' });
  const rate = { higherIsBetter: true };
  const perPartition = new Map<string, number>();
  try {
    ctx.log('  Spark application on local[4] …');
    await withSparkApp('local[4]', ctx.log, async (app) => {
      ctx.log('  spark: warm-up run …');
      await load(ctx, app, sql(1000, false), 4, 1000, {});
      for (const [name, rows, payload] of [
        ['small records', small, false],
        ['1 KB records', kb, true],
      ] as const) {
        for (const path of PATHS) {
          const rates: number[] = [];
          for (let r = 0; r < reps; r++) {
            ctx.log(`  Spark local[4] ${name}, ${rows} rows in 4 partitions, ${path.label}, ${r + 1}/${reps} …`);
            for (const st of await load(ctx, app, sql(rows, payload), 4, rows, { format: path.format, read: path.read }))
              rates.push((st.rows / st.loadMs) * 1000);
          }
          const label = `Spark local[4], ${name}, ${path.label}: per partition`;
          const note = `SQL source (${rows} rows {id, v${payload ? ', payload' : ''}}): ${path.note}`;
          const m = payload
            ? measure(
                label,
                'MB/s',
                rates.map((x) => (x * KB_ROW_BYTES) / 1e6),
                { ...rate, note },
              )
            : measure(label, 'rows/s', rates, { ...rate, note });
          s.rows.push(m);
          perPartition.set(`${name}/${path.format}/${path.read}`, m.median);
        }
      }
      ctx.log(`  Spark local[4] bare integers (range source), ${small} rows …`);
      const ints = (await load(ctx, app, { range: { end: small } }, 4, small, {})).map((st) => (st.rows / st.loadMs) * 1000);
      s.rows.push(
        measure('Spark local[4], bare integers (range source), JSON frames: per partition', 'rows/s', ints, {
          ...rate,
          note: 'ints made in Python, no DataFrame',
        }),
      );

      ctx.log(`  Spark local[4] one partition of ${bigRows} 1 KB rows as Arrow, discarded …`);
      const [big] = await load(ctx, app, sql(bigRows, true, 1), 1, bigRows, { read: 'arrow' });
      s.rows.push(
        measure(
          `peak worker RSS, one ${Math.round(big!.arrowBytes / 1e6)} MB partition read as Arrow (rows.arrow()) and discarded`,
          'MB',
          [big!.maxRss / 1e6],
          {
            note: `whole worker process (Node, tsx, NATS client); ${Math.round(((big!.arrowBytes / big!.loadMs) * 1000) / 1e6)} MB/s`,
          },
        ),
      );
      perPartition.set('bigRss', big!.maxRss / 1e6);
    });
  } catch (err) {
    s.skipped.push({ name: 'library on Spark (rows from a Spark task into initPartition)', reason: reasonOf(err) });
  }
  try {
    const shape = shapeSettings(quick);
    const out = await sparkShape('local[8]', shape);
    const note = `bare Spark: a Python task iterating its partition (${shape.loadRows} rows in ${shape.loadParts}), no JSON, no worker`;
    const bareSmall = measure('bare Spark task, small records: per partition', 'rows/s', out.load.small, { ...rate, note });
    const bareKb = measure(
      'bare Spark task, 1 KB records: per partition',
      'MB/s',
      out.load['1kb'].map((x) => (x * KB_ROW_BYTES) / 1e6),
      { ...rate, note },
    );
    s.rows.push(bareSmall, bareKb);
    perPartition.set('bare small', bareSmall.median);
    perPartition.set('bare kb', bareKb.median);
  } catch (err) {
    s.skipped.push({ name: 'bare Spark task iterator', reason: reasonOf(err) });
  }
  const ratio = (a?: number, b?: number): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const check = (id: string, target: string, value: number | undefined, goal: number, show: (v: number) => string): void => {
    s.targets.push({ id, target, measured: value === undefined ? 'not measured' : show(value), met: value === undefined ? null : value >= goal });
  };
  const pct = (v: number): string => `${Math.round(v * 100)}%`;
  check(
    'load.arrow.small',
    'Spark SQL → rows.arrow(), small rows: >= 50% of the bare Spark task',
    ratio(perPartition.get('small records/arrow/arrow'), perPartition.get('bare small')),
    0.5,
    pct,
  );
  check(
    'load.arrow.kb',
    'Spark SQL → rows.arrow(), 1 KB rows, MB/s: >= 50% of the bare Spark task',
    ratio(perPartition.get('1 KB records/arrow/arrow'), perPartition.get('bare kb')),
    0.5,
    pct,
  );
  check(
    'load.arrow.objects',
    'Spark SQL → plain row objects (rows.batches()): >= 3x the JSON path',
    ratio(perPartition.get('small records/arrow/batches'), perPartition.get('small records/rows/batches')),
    3,
    (v) => `${v.toFixed(1)}x`,
  );
  const rss = perPartition.get('bigRss');
  s.targets.push({
    id: 'load.arrow.rss',
    target: 'peak worker RSS loading a 1 GB partition as Arrow: < 256 MB',
    measured: rss === undefined ? 'not measured' : `${Math.round(rss)} MB${quick ? ' (quick: a ~100 MB partition)' : ''}`,
    met: rss === undefined ? null : rss < 256,
  });
}
