/**
 * Benchmark 1 — query latency vs Spark. The same rows (id, v = id*7919 % 1000) in 4 partitions,
 * the same two questions (count where v < 100; lookup by key), answered by the partition servers
 * (scatter/gather over NATS, one partition over NATS and HTTP) and by Spark actions on the same
 * rows cached in one Spark application on local[4].
 */
import { connect } from '@nats-io/transport-node';
import { subjectsFor } from '../src/index.js';
import { encodeRequest } from '../src/transport/messages.js';
import { benchOptions, sumReplies, withCluster } from './lib/cluster.js';
import { KeepAliveClient } from './lib/http-client.js';
import { sparkSubmit, sparkUnavailable } from './lib/spark.js';
import { measure, sampleAsync } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';
import { valueOf } from './servers/row-store.js';

const LT = 100;

interface SparkQueryOut {
  spark_version: string;
  master: string;
  answers: { df_count: number; rdd_count: number };
  app_up_ms: number;
  cache_ms: number;
  samples: Record<'trivial_job' | 'df_count' | 'df_lookup' | 'rdd_count' | 'rdd_lookup', number[]>;
}

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
  const sparkReps = ctx.quick ? 5 : 30;
  const bounds = { count: reps, maxMs: ctx.quick ? 3000 : 15_000 };
  const skipSpark = ctx.quick ? 'quick mode' : sparkUnavailable();
  const s = section('query', '1. Query latency: partition servers vs Spark actions', {
    rows, partitions, predicate: `v < ${LT}`, samplesPerQuery: reps, sparkSamplesPerQuery: sparkReps, sparkMaster: 'local[4]',
  });
  const key = (i: number): number => (i * 104729) % rows;
  const owner = (k: number): number => {
    for (let p = 0; p < partitions; p++) if (k < Math.floor(((p + 1) * rows) / partitions)) return p;
    return partitions - 1;
  };

  // The Spark application runs first, alone, so the two sides never share the CPUs.
  let spark: SparkQueryOut | undefined;
  if (skipSpark) s.skipped.push({ name: 'Spark actions', reason: skipSpark });
  else {
    ctx.log('  spark-submit local[4] query_bench.py …');
    try {
      spark = (await sparkSubmit<SparkQueryOut>('query_bench.py', 'local[4]', [rows, partitions, sparkReps, LT], 300_000)).out;
      s.settings.sparkVersion = spark.spark_version;
      s.notes.push(`Spark: app up in ${spark.app_up_ms.toFixed(0)} ms, 1M rows cached (DataFrame + RDD) in ${spark.cache_ms.toFixed(0)} ms; the Spark side is its own application (no Spark launcher yet), on the same rows.`);
    } catch (err) {
      s.skipped.push({ name: 'Spark actions', reason: `spark-submit failed: ${(err as Error).message}` });
    }
  }

  ctx.log(`  cluster: ${rows} rows in ${partitions} partitions …`);
  const expected = expectedCount(rows, LT);
  await withCluster(benchOptions(ctx, { data: { range: { end: rows } }, partitions, config: { store: 'columns' } }), async (cluster) => {
    const got = sumReplies(await cluster.requestAll('count_matching', { lt: LT }));
    if (got !== expected) throw new Error(`scatter/gather count ${got}, expected ${expected}`);
    if (spark && spark.answers.df_count !== expected) throw new Error(`Spark counted ${spark.answers.df_count}, expected ${expected}`);
    const p0 = cluster.hosts.get(0)!;
    const http = new KeepAliveClient(p0.host, p0.port!);
    const nc = await connect({ servers: cluster.natsUrl! });
    try {
      const member0 = cluster.members.find((m) => m.partition === 0)!;
      const pingSubject = subjectsFor(cluster.id!).endpoint(0, member0.attempt, 'ping');
      const add = (name: string, samples: number[], note?: string) => s.rows.push(measure(name, 'ms', samples, note ? { note } : {}));
      add('scatter/gather count, 4 partitions (NATS)', await sampleAsync(async () => sumReplies(await cluster.requestAll('count_matching', { lt: LT })), bounds));
      add('scatter/gather lookup, 4 partitions (NATS)', await sampleAsync(async (i) => cluster.requestAll('lookup', { key: key(i) }), bounds));
      add('lookup routed to owner partition (NATS)', await sampleAsync(async (i) => cluster.request(owner(key(i)), 'lookup', { key: key(i) }), bounds));
      add('count, one partition (NATS)', await sampleAsync(async () => cluster.request(0, 'count_matching', { lt: LT }), bounds));
      add('count, one partition (HTTP)', await sampleAsync(async () => http.get(`/app/count?lt=${LT}`), bounds));
      add('lookup, one partition (HTTP)', await sampleAsync(async (i) => http.get(`/app/lookup?key=${key(i) % Math.floor(rows / partitions)}`), bounds));
      add('ping, one partition (cluster.request)', await sampleAsync(async () => cluster.request(0, 'ping'), bounds), 'floor: NATS round trip + library');
      add('ping, one partition (raw NATS request)', await sampleAsync(async () => nc.request(pingSubject, encodeRequest(undefined), { timeout: 5000 }), bounds), 'floor: NATS round trip only');
    } finally {
      http.close();
      await nc.close();
    }
  });

  if (spark) {
    const sp = spark.samples;
    s.rows.push(measure('Spark DataFrame count (cached)', 'ms', sp.df_count));
    s.rows.push(measure('Spark DataFrame lookup (cached)', 'ms', sp.df_lookup));
    s.rows.push(measure('Spark RDD count (cached, Python)', 'ms', sp.rdd_count));
    s.rows.push(measure('Spark RDD lookup (cached, Python)', 'ms', sp.rdd_lookup));
    s.rows.push(measure('Spark trivial job (1 task, no data)', 'ms', sp.trivial_job, { note: "floor: Spark's job planning and scheduling" }));
  }

  const med = (name: string) => s.rows.find((r) => r.name === name)?.median ?? Number.NaN;
  const sg = med('scatter/gather count, 4 partitions (NATS)');
  s.targets.push({ id: 'query.sg-under-1ms', target: 'scatter/gather to 4 partitions: median < 1 ms', measured: `${sg.toFixed(3)} ms`, met: sg < 1 });
  const pairs: [string, string, string][] = [
    ['count', 'scatter/gather count, 4 partitions (NATS)', 'Spark DataFrame count (cached)'],
    ['lookup', 'scatter/gather lookup, 4 partitions (NATS)', 'Spark DataFrame lookup (cached)'],
  ];
  for (const [q, ours, theirs] of pairs) {
    const ratio = med(theirs) / med(ours);
    s.targets.push({
      id: `query.ratio-${q}`,
      target: `${q}: Spark action median / scatter/gather median >= 200x`,
      measured: spark ? `${ratio.toFixed(0)}x (${med(theirs).toFixed(1)} ms vs ${med(ours).toFixed(3)} ms)` : 'not measured',
      met: spark ? ratio >= 200 : null,
    });
  }
  return s;
}
