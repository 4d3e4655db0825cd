/**
 * Benchmark 10 — the dashboard and events off the data path. Two embedded clusters of 4
 * partitions side by side, the same requests timed in alternating rounds on each: one whose
 * workers count no requests, nobody watching; one whose workers count requests for the
 * dashboard, with the page's server open, a WebSocket client receiving every push, and listeners
 * on every cluster event. Latency: `cluster.request` ping (NATS) and a keep-alive HTTP GET, one at
 * a time; throughput: scatter/gather `requestAll` with 16 in flight for a fixed time, and HTTP GETs
 * to one partition driven by autocannon (a separate process), where the workers' counting costs
 * most. The goal is under 5% apart.
 */
import WebSocket from 'ws';
import type { Cluster, Dashboard } from '../src/index.js';
import type { BenchConfig } from './servers/bench-server.js';
import { benchOptions, sumReplies, withCluster } from './lib/cluster.js';
import { KeepAliveClient } from './lib/http-client.js';
import { autocannon, closedLoop, type AutocannonSettings } from './lib/load.js';
import { measure, sampleAsync } from './lib/timing.js';
import { summarize } from './lib/stats.js';
import { isSmoke, section, type BenchContext, type SectionResult } from './lib/types.js';

const median = (xs: number[]): number => summarize(xs).median;

interface Watched {
  dashboard: Dashboard;
  pushes: () => number;
  close(): Promise<void>;
}

/** Opens the dashboard, connects a WebSocket client to it, and listens to every cluster event. */
async function watch(cluster: Cluster<unknown, BenchConfig>): Promise<Watched> {
  const dashboard = await cluster.dashboard();
  let pushes = 0;
  const ws = new WebSocket(`ws://${dashboard.host}:${dashboard.port}/ws`, { headers: { authorization: `Bearer ${cluster.token!}` } });
  ws.on('message', () => pushes++);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let events = 0;
  const count = (): void => void events++;
  const names = ['member', 'state', 'progress', 'spark'] as const;
  for (const n of names) cluster.on(n, count);
  return {
    dashboard,
    pushes: () => pushes,
    async close() {
      for (const n of names) cluster.off(n, count);
      ws.close();
      await dashboard.close();
    },
  };
}

export default async function dashboardOverhead(ctx: BenchContext): Promise<SectionResult> {
  const partitions = 4;
  // Every figure comes at the end: a smoke run makes one round of each side.
  const rounds = isSmoke() ? 1 : ctx.quick ? 24 : 60;
  const reps = isSmoke() ? 20 : ctx.quick ? 100 : 300;
  const loadMs = ctx.quick ? 500 : 1500;
  const inflight = 16;
  const s = section('dashboard', '10. Dashboard and events: the data path with and without them', {
    partitions,
    rounds,
    samplesPerRound: reps,
    throughputMsPerRound: loadMs,
    inflight,
    without: 'a cluster whose workers count no requests (SPS_REQUEST_STATS=0), no dashboard, no listeners',
    with: 'a cluster whose workers count requests and report them, its dashboard open, 1 WebSocket client receiving every push, listeners on member/state/progress/spark',
  });
  const sides = ['without', 'with'] as const;
  const samples = { ping: { without: [] as number[], with: [] as number[] }, http: { without: [] as number[], with: [] as number[] } };
  const rates = { without: [] as number[], with: [] as number[] };
  const httpRates = { without: [] as number[], with: [] as number[] };
  const cannon: AutocannonSettings = { connections: 16, pipelining: 10, durationSec: 1 };
  // autocannon takes seconds per run: it runs in every `cannonEvery`th round only.
  const cannonEvery = 3;
  // Per round, each side's median: the targets compare the sides round by round (paired), so a
  // change of the machine's load between rounds does not pass for the dashboard's cost.
  const perRound = { ping: { without: [] as number[], with: [] as number[] }, http: { without: [] as number[], with: [] as number[] } };
  let pushes = 0;

  // Two clusters side by side: "without" counts no requests (SPS_REQUEST_STATS=0) and nobody
  // watches it; "with" counts them and has the dashboard open with a client and listeners throughout.
  const optionsOf = (counting: boolean) => benchOptions(ctx, { data: { range: { end: 40_000 } }, partitions, env: counting ? {} : { SPS_REQUEST_STATS: '0' } });
  await withCluster(optionsOf(false), async (plain) =>
    withCluster(optionsOf(true), async (observed) => {
      const watched = await watch(observed);
      const clusters = { without: plain, with: observed };
      const clients = {
        without: new KeepAliveClient(plain.hosts.get(0)!.host, plain.hosts.get(0)!.port!),
        with: new KeepAliveClient(observed.hosts.get(0)!.host, observed.hosts.get(0)!.port!),
      };
      try {
        for (const side of sides) {
          // Untimed warm-up of every path (JIT, connections), so no side is timed cold.
          await closedLoop(async () => sumReplies(await clusters[side].requestAll('ping')), inflight, Infinity, isSmoke() ? 200 : 3000);
          await sampleAsync(() => clients[side].get('/app/count?lt=100'), { count: reps, maxMs: 5000, warmup: 0 });
        }
        for (let round = 0; round < rounds; round++) {
          // Alternating order, so a drift of the machine's load hits both sides alike.
          const order = round % 2 === 0 ? sides : ([...sides].reverse() as ('without' | 'with')[]);
          for (const side of order) {
            const cluster = clusters[side];
            const bounds = { count: reps, maxMs: ctx.quick ? 4000 : 20_000, warmup: 10 };
            const ping = await sampleAsync(() => cluster.request(0, 'ping'), bounds);
            const get = await sampleAsync(() => clients[side].get('/app/count?lt=100'), bounds);
            samples.ping[side].push(...ping);
            samples.http[side].push(...get);
            perRound.ping[side].push(median(ping));
            perRound.http[side].push(median(get));
            const r = await closedLoop(async () => sumReplies(await cluster.requestAll('ping')), inflight, Infinity, loadMs);
            rates[side].push(r.perSec);
            if (round % cannonEvery === 0) {
              const { host, port } = cluster.hosts.get(0)!;
              httpRates[side].push((await autocannon(`http://${host}:${port}/app/count?lt=100`, cannon)).requests.mean);
            }
          }
        }
      } finally {
        clients.without.close();
        clients.with.close();
        pushes = watched.pushes();
        await watched.close();
      }
    }),
  );

  for (const side of sides) {
    s.rows.push(measure(`ping, one partition (cluster.request), ${side} dashboard`, 'ms', samples.ping[side]));
    s.rows.push(measure(`HTTP GET /app/count, one partition, ${side} dashboard`, 'ms', samples.http[side]));
  }
  for (const side of sides) {
    s.rows.push(measure(`requestAll ping, 4 partitions, ${inflight} in flight, ${side} dashboard`, 'req/s', rates[side], { higherIsBetter: true }));
  }
  for (const side of sides) {
    s.rows.push(
      measure(`HTTP GET /app/count, one partition, autocannon c${cannon.connections} p${cannon.pipelining}, ${side} dashboard`, 'req/s', httpRates[side], {
        higherIsBetter: true,
      }),
    );
  }
  s.notes.push(`The WebSocket client received ${pushes} snapshots while the section ran.`);
  const checks: [string, { without: number[]; with: number[] }][] = [
    ['latency-nats', perRound.ping],
    ['latency-http', perRound.http],
    ['throughput', rates],
    ['throughput-http', httpRates],
  ];
  for (const [id, pairs] of checks) {
    const ratio = median(pairs.with.map((w, i) => w / pairs.without[i]!));
    const d = Math.abs(ratio - 1) * 100;
    s.targets.push({
      id: `dashboard.${id}`,
      target: `${id}: with the dashboard within 5% of without (median of the rounds' with/without ratios)`,
      measured: Number.isFinite(d) ? `${d.toFixed(1)}% apart (ratio ${ratio.toFixed(3)} over ${pairs.with.length} rounds)` : 'not measured',
      met: Number.isFinite(d) ? d < 5 : null,
    });
  }
  return s;
}
