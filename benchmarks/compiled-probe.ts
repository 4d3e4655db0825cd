/**
 * Embedded start/stop and idle memory with the library compiled to JavaScript (as the npm package
 * ships it) and a JavaScript server module, so workers start on plain Node without tsx.
 * Not run directly: lib/compiled.ts compiles the project and runs the compiled copy of this file
 * with `node compiled-probe.js <sizes,csv> <reps>`; it prints one `BENCH_JSON {...}` line.
 */
import { Cluster } from '../src/index.js';
import { rssOf } from './lib/proc.js';
import { sleep } from './lib/timing.js';
import type { ServerStats } from './servers/bench-server.js';

const server = new URL('./servers/bench-server.js', import.meta.url);
const sizes = (process.argv[2] ?? '2').split(',').map(Number);
const reps = Number(process.argv[3] ?? '1');
const start: Record<string, number[]> = {};
const stop: Record<string, number[]> = {};
for (const n of sizes) {
  start[n] = [];
  stop[n] = [];
  for (let r = 0; r < reps; r++) {
    const cluster = new Cluster({ server, data: { range: { end: 10_000 } }, partitions: n, log: false, startTimeoutMs: 60_000 });
    try {
      const t0 = performance.now();
      await cluster.start();
      start[n]!.push(performance.now() - t0);
      const t1 = performance.now();
      await cluster.stop();
      stop[n]!.push(performance.now() - t1);
      if (cluster.result().size !== n) throw new Error(`stop() assembled ${cluster.result().size} results, expected ${n}`);
    } finally {
      await cluster.stop().catch(() => {});
    }
  }
}
const idle = new Cluster({ server, data: [], partitions: 3, log: false });
const idleRss: number[] = [];
try {
  await idle.start();
  await sleep(500);
  for (const [, r] of await idle.requestAll<ServerStats>('stats')) if (r.ok) idleRss.push((await rssOf(r.value.pid)) / 2 ** 20);
} finally {
  await idle.stop().catch(() => {});
}
console.log(`BENCH_JSON ${JSON.stringify({ start, stop, idleRss })}`);
