/**
 * Benchmark 1 — query latency vs Spark. The same rows (id, v = id*7919 % 1000) in 4 partitions,
 * the same two questions (count where v < 100; lookup by key), answered by the partition servers
 * (scatter/gather over NATS, one partition over NATS and HTTP) and by Spark SQL actions. Both
 * sides live in ONE Spark application on local[4]: the rows are a cached table there
 * (CACHE TABLE … AS SELECT … FROM range), the Spark side queries it with `app.sql`, and the
 * partition servers are launched on the same application with `source: { table }`.
 * In quick mode Spark is skipped and the servers get the same rows from the embedded launcher.
 */
import { connectBus } from '../src/transport/bus.js';
import { subjectsFor, type SparkApplication } from '../src/index.js';
import { encodeRequest } from '../src/protocol/messages.js';
import { benchOptions, sumReplies, withCluster } from './lib/cluster.js';
import { KeepAliveClient } from './lib/http-client.js';
import { sparkUnavailable } from './lib/spark.js';
import { withSparkApp } from './lib/spark-app.js';
import { measure, sampleAsync } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';
import { valueOf } from './servers/row-store.js';

const LT = 100;
const TABLE = 'sps_bench_rows';

/** The expected answer to "count where v < lt" over ids 0..rows-1. */
export function expectedCount(rows: number, lt: number): number {
  let c = 0;
  for (let i = 0; i < rows; i++) if (valueOf(i) < lt) c++;
  return c;
}

export default async function queryLatency(ctx: BenchContext): Promise<SectionResult> {
  const rows = ctx.quick ? 20_000 : 1_000_000;
  const partitions = 4;
  const reps = ctx.quick ? 50 : 1000;
  const sparkReps = 30;
  const bounds = { count: reps, maxMs: ctx.quick ? 3000 : 15_000 };
  const skipSpark = ctx.quick ? 'quick mode' : sparkUnavailable();
  const s = section('query', '1. Query latency: partition servers vs Spark actions', {
    rows,
    partitions,
    predicate: `v < ${LT}`,
    samplesPerQuery: reps,
    sparkSamplesPerQuery: sparkReps,
    sparkMaster: 'local[4]',
    servers: skipSpark ? 'embedded launcher (Spark skipped)' : `Spark launcher, same application, source { table: '${TABLE}' }`,
  });
  const key = (i: number): number => (i * 104729) % rows;
  const expected = expectedCount(rows, LT);
  const add = (name: string, samples: number[], note?: string) => s.rows.push(measure(name, 'ms', samples, note ? { note } : {}));

  const sparkSide = async (app: SparkApplication, upMs: number): Promise<void> => {
    s.settings.sparkVersion = app.info.sparkVersion;
    ctx.log(`  spark: CACHE TABLE ${TABLE} (${rows} rows) …`);
    const t0 = performance.now();
    await app.sql(`CACHE TABLE ${TABLE} AS SELECT id, CAST((id * 7919) % 1000 AS INT) AS v FROM range(0, ${rows}, 1, ${partitions})`);
    const cacheMs = performance.now() - t0;
    const countSql = `SELECT count(*) AS c FROM ${TABLE} WHERE v < ${LT}`;
    const got = Number((await app.sql(countSql))[0]?.c);
    if (got !== expected) throw new Error(`Spark counted ${got}, expected ${expected}`);
    const looked = await app.sql(`SELECT id, v FROM ${TABLE} WHERE id = ${key(7)}`);
    if (looked.length !== 1 || Number(looked[0]!.v) !== valueOf(key(7))) throw new Error(`Spark lookup of ${key(7)} gave ${JSON.stringify(looked)}`);
    s.notes.push(
      `Spark: application (spark-submit of the runner, local[4]) up in ${upMs.toFixed(0)} ms; ${rows} rows cached as table ${TABLE} in ${cacheMs.toFixed(0)} ms. Spark rows are timed first, while no partition server runs; every Spark figure includes the NATS request/reply to the runner (see the SELECT 1 floor).`,
    );
    const sb = { count: sparkReps, maxMs: 90_000, warmup: 3 };
    ctx.log('  spark: timing SQL actions …');
    add('Spark SQL count (cached table, same application)', await sampleAsync(() => app.sql(countSql), sb), 'app.sql, includes NATS to the runner');
    add(
      'Spark SQL lookup (cached table, same application)',
      await sampleAsync((i) => app.sql(`SELECT id, v FROM ${TABLE} WHERE id = ${key(i)}`), sb),
      'app.sql, includes NATS to the runner',
    );
    add(
      'Spark SQL trivial job (count of a 1-row range)',
      await sampleAsync(() => app.sql('SELECT count(*) AS c FROM range(0, 1, 1, 1)'), sb),
      "floor: Spark's job planning and scheduling",
    );
    add('Spark SQL SELECT 1 (no job)', await sampleAsync(() => app.sql('SELECT 1 AS one'), sb), 'floor: NATS to the runner + Spark SQL parse/plan, no task');
  };

  const serverSide = async (app: SparkApplication | undefined): Promise<void> => {
    ctx.log(`  cluster: ${rows} rows in ${partitions} partitions${app ? ` from Spark table ${TABLE}` : ''} …`);
    const source = app ? { spark: app, source: { table: TABLE } } : { data: { range: { end: rows } } };
    if (app)
      s.notes.push(
        `Partition servers: 4 tasks of the same application reading table ${TABLE} (Spark repartitions it round-robin, so keys are not in id ranges: routed and HTTP lookups use keys whose owner the scatter/gather lookups found). The idle Spark JVM and its 4 Python task processes stay on the 2 cores while the servers are timed.`,
      );
    await withCluster(benchOptions(ctx, { ...source, partitions, config: { store: 'columns' } }), async (cluster) => {
      const got = sumReplies(await cluster.requestAll('count_matching', { lt: LT }));
      if (got !== expected) throw new Error(`scatter/gather count ${got}, expected ${expected}`);
      const p0 = cluster.hosts.get(0)!;
      const http = new KeepAliveClient(p0.host, p0.port!);
      const nc = await connectBus(cluster.credentials('client'), 'sps-bench');
      try {
        const member0 = cluster.members.find((m) => m.partition === 0)!;
        const pingSubject = subjectsFor(cluster.id!).endpoint(0, member0.attempt, 'ping');
        add(
          'scatter/gather count, 4 partitions (NATS)',
          await sampleAsync(async () => sumReplies(await cluster.requestAll('count_matching', { lt: LT })), bounds),
        );
        // Spark repartitions the table round-robin, so which partition owns a key is learnt from
        // the scatter/gather lookups (the routed and HTTP lookups then ask only the owner).
        const owners = new Map<number, number>();
        add(
          'scatter/gather lookup, 4 partitions (NATS)',
          await sampleAsync(async (i) => {
            const replies = await cluster.requestAll('lookup', { key: key(i) });
            for (const [p, r] of replies) if (r.ok && r.value) owners.set(key(i), p);
          }, bounds),
        );
        const known = [...owners.entries()];
        const p0Keys = known.filter(([, p]) => p === 0).map(([k]) => k);
        if (known.length === 0 || p0Keys.length === 0) throw new Error('no key owners learnt from the scatter/gather lookups');
        add(
          'lookup routed to owner partition (NATS)',
          await sampleAsync(async (i) => {
            const [k, p] = known[i % known.length]!;
            return cluster.request(p, 'lookup', { key: k });
          }, bounds),
        );
        add('count, one partition (NATS)', await sampleAsync(async () => cluster.request(0, 'count_matching', { lt: LT }), bounds));
        add('count, one partition (HTTP)', await sampleAsync(async () => http.get(`/app/count?lt=${LT}`), bounds));
        add('lookup, one partition (HTTP)', await sampleAsync(async (i) => http.get(`/app/lookup?key=${p0Keys[i % p0Keys.length]}`), bounds));
        add('ping, one partition (cluster.request)', await sampleAsync(async () => cluster.request(0, 'ping'), bounds), 'floor: NATS round trip + library');
        add(
          'ping, one partition (raw NATS request)',
          await sampleAsync(async () => nc.request(pingSubject, encodeRequest(undefined), { timeout: 5000 }), bounds),
          'floor: NATS round trip only',
        );
      } finally {
        http.close();
        await nc.close();
      }
    });
  };

  if (skipSpark) {
    s.skipped.push({ name: 'Spark actions (servers ran on the embedded launcher)', reason: skipSpark });
    await serverSide(undefined);
  } else {
    ctx.log('  Spark application on local[4] …');
    await withSparkApp('local[4]', ctx.log, async (app, upMs) => {
      await sparkSide(app, upMs);
      await serverSide(app);
    });
  }

  const med = (name: string) => s.rows.find((r) => r.name === name)?.median ?? Number.NaN;
  const sg = med('scatter/gather count, 4 partitions (NATS)');
  s.targets.push({ id: 'query.sg-under-1ms', target: 'scatter/gather to 4 partitions: median < 1 ms', measured: `${sg.toFixed(3)} ms`, met: sg < 1 });
  const pairs: [string, string, string][] = [
    ['count', 'scatter/gather count, 4 partitions (NATS)', 'Spark SQL count (cached table, same application)'],
    ['lookup', 'scatter/gather lookup, 4 partitions (NATS)', 'Spark SQL lookup (cached table, same application)'],
  ];
  for (const [q, ours, theirs] of pairs) {
    const ratio = med(theirs) / med(ours);
    const measured = Number.isFinite(ratio);
    s.targets.push({
      id: `query.ratio-${q}`,
      target: `${q}: Spark action median / scatter/gather median >= 200x`,
      measured: measured ? `${ratio.toFixed(0)}x (${med(theirs).toFixed(1)} ms vs ${med(ours).toFixed(3)} ms)` : 'not measured',
      met: measured ? ratio >= 200 : null,
    });
  }
  return s;
}
