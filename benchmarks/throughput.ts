/**
 * Benchmark 2 — throughput of one partition: the `lookup` endpoint over NATS (one client, 64
 * requests in flight; through the Cluster API and raw on the same subject) and over HTTP driven by
 * autocannon, beside a node:http server and a bare uWebSockets.js server with the same handler.
 */
import { connectBus } from '../src/transport/bus.js';
import { subjectsFor } from '../src/index.js';
import { encodeRequest } from '../src/protocol/messages.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { autocannon, closedLoop, type AutocannonSettings } from './lib/load.js';
import { startChild, waitForOutput } from './lib/proc.js';
import { measure } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';

const BASELINE = new URL('./servers/baseline-http.ts', import.meta.url).pathname;

export default async function throughput(ctx: BenchContext): Promise<SectionResult> {
  const rows = ctx.quick ? 10_000 : 250_000;
  const runs = ctx.quick ? 1 : 3;
  const natsMs = ctx.quick ? 1000 : 4000;
  const inflight = 64;
  const primary: AutocannonSettings = { connections: 16, pipelining: 10, durationSec: ctx.quick ? 1 : 4 };
  const secondary: AutocannonSettings = { connections: 64, pipelining: 1, durationSec: ctx.quick ? 1 : 4 };
  const s = section('throughput', '2. Throughput of one partition (lookup endpoint)', {
    rows,
    runs,
    natsInflight: inflight,
    natsRunMs: natsMs,
    natsMaxRequestsPerRun: 1_000_000,
    autocannon: primary,
    autocannonSecondary: secondary,
    keys: 'lookup key varies per request over NATS; fixed key over HTTP',
  });
  const key = (i: number): number => (i * 104729) % rows;
  const perSec = (name: string, samples: number[], note?: string) =>
    s.rows.push(measure(name, 'req/s', samples, { higherIsBetter: true, ...(note ? { note } : {}) }));

  await withCluster(benchOptions(ctx, { data: { range: { end: rows } }, partitions: 1, config: { store: 'columns' } }), async (cluster) => {
    const member = cluster.members[0]!;
    const subject = subjectsFor(cluster.id!).endpoint(0, member.attempt, 'lookup');
    const nc = await connectBus(cluster.credentials('client'), 'sps-bench');
    try {
      // Warm-up (JIT, connections), untimed.
      await closedLoop((i) => cluster.request(0, 'lookup', { key: key(i) }), inflight, 50_000, ctx.quick ? 300 : 1000);
      await closedLoop((i) => nc.request(subject, encodeRequest({ key: key(i) }), { timeout: 10_000 }), inflight, 50_000, ctx.quick ? 300 : 1000);
      const lib: number[] = [];
      const raw: number[] = [];
      for (let r = 0; r < runs; r++) {
        ctx.log(`  NATS run ${r + 1}/${runs} …`);
        lib.push((await closedLoop((i) => cluster.request(0, 'lookup', { key: key(i) }), inflight, 1_000_000, natsMs)).perSec);
        raw.push((await closedLoop((i) => nc.request(subject, encodeRequest({ key: key(i) }), { timeout: 10_000 }), inflight, 1_000_000, natsMs)).perSec);
      }
      perSec('NATS, cluster.request, 64 in flight', lib);
      perSec('NATS, raw request on the same subject, 64 in flight', raw, 'no Cluster API in the way');
    } finally {
      await nc.close();
    }
    const { host, port } = cluster.hosts.get(0)!;
    const libUrl = `http://${host}:${port}/app/lookup?key=12345`;
    const baselines = [
      { name: 'node:http, same handler', kind: 'node' },
      { name: 'uWebSockets.js bare, same handler', kind: 'uws' },
    ];
    const results = new Map<string, number[]>([[`HTTP partition server (uWS) c${primary.connections} p${primary.pipelining}`, []]]);
    const secondaryResults = new Map<string, number>();
    const handles = baselines.map((b) => ({ ...b, h: startChild(process.execPath, ['--import', 'tsx', BASELINE, b.kind, String(rows)]) }));
    try {
      const urls = new Map<string, string>([[`HTTP partition server (uWS) c${primary.connections} p${primary.pipelining}`, libUrl]]);
      for (const b of handles) {
        const m = await waitForOutput(b.h, /PORT (\d+)/, 30_000);
        const name = `HTTP ${b.name} c${primary.connections} p${primary.pipelining}`;
        urls.set(name, `http://127.0.0.1:${m[1]}/app/lookup?key=12345`);
        results.set(name, []);
      }
      for (const url of urls.values()) await autocannon(url, { ...primary, durationSec: 1 }); // warm-up
      for (let r = 0; r < runs; r++) {
        for (const [name, url] of urls) {
          ctx.log(`  autocannon ${name} run ${r + 1}/${runs} …`);
          results.get(name)!.push((await autocannon(url, primary)).requests.mean);
        }
      }
      for (const [name, url] of urls) {
        const sname = name.replace(/ c\d+ p\d+$/, ` c${secondary.connections} p${secondary.pipelining}`);
        secondaryResults.set(sname, (await autocannon(url, secondary)).requests.mean);
      }
    } finally {
      await Promise.all(handles.map((b) => b.h.stop()));
    }
    for (const [name, samples] of results) perSec(name, samples);
    for (const [name, v] of secondaryResults) perSec(name, [v], 'no pipelining: autocannon itself is the limit');
  });

  const med = (prefix: string) => s.rows.find((r) => r.name.startsWith(prefix))?.median ?? Number.NaN;
  const nats = med('NATS, cluster.request');
  const http = med('HTTP partition server');
  const node = med('HTTP node:http');
  s.targets.push({
    id: 'throughput.nats',
    target: 'NATS, one partition, 64 in flight: >= 30k req/s',
    measured: `${Math.round(nats)} req/s`,
    met: nats >= 30_000,
  });
  s.targets.push({ id: 'throughput.http', target: 'HTTP, one partition: >= 50k req/s', measured: `${Math.round(http)} req/s`, met: http >= 50_000 });
  s.targets.push({
    id: 'throughput.http-vs-node',
    target: 'HTTP: >= 2x node:http with the same handler',
    measured: `${(http / node).toFixed(2)}x (${Math.round(http)} vs ${Math.round(node)})`,
    met: http / node >= 2,
  });
  s.notes.push(
    `autocannon runs in its own process on the same 2 cores; with ${primary.connections} connections x ${primary.pipelining} pipelined requests it can saturate the servers, without pipelining it saturates first.`,
  );
  return s;
}
