/**
 * Embedded start/stop and idle memory with the library compiled to JavaScript (as the npm package
 * ships it) and a JavaScript server module, so workers start on plain Node without tsx.
 * Not run directly: lib/compiled.ts compiles the project and runs the compiled copy of this file
 * with `node compiled-probe.js <sizes,csv> <reps> [<spark master>]`; it prints one `BENCH_JSON {...}`
 * line. Given a Spark master, it instead times library start/stop on one shared Spark application
 * there (after one untimed warm-up run), as benchmark 3 does from the TypeScript sources.
 */
import { Cluster, SparkApplication } from '../src/index.js';
import { BENCH_SPARK_CONF } from './lib/spark-app.js';
import { rssOf } from './lib/proc.js';
import { sleep } from './lib/timing.js';
import type { ServerStats } from './servers/bench-server.js';

const server = new URL('./servers/bench-server.js', import.meta.url);
const sizes = (process.argv[2] ?? '2').split(',').map(Number);
const reps = Number(process.argv[3] ?? '1');
const sparkMaster = process.argv[4];
const start: Record<string, number[]> = {};
const stop: Record<string, number[]> = {};
for (const n of sparkMaster ? [] : sizes) {
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
const idleRss: number[] = [];
if (!sparkMaster) {
  const idle = new Cluster({ server, data: [], partitions: 3, log: false });
  try {
    await idle.start();
    await sleep(500);
    for (const [, r] of await idle.requestAll<ServerStats>('stats')) if (r.ok) idleRss.push((await rssOf(r.value.pid)) / 2 ** 20);
  } finally {
    await idle.stop().catch(() => {});
  }
}
const sparkStart: Record<string, number[]> = {};
const sparkStop: Record<string, number[]> = {};
if (sparkMaster) {
  const app = await SparkApplication.start({ master: sparkMaster, conf: BENCH_SPARK_CONF, log: false, startTimeoutMs: 180_000 });
  const once = async (n: number): Promise<[number, number]> => {
    const cluster = new Cluster({ server, spark: app, source: { range: { end: 10_000 } }, partitions: n, log: false, startTimeoutMs: 120_000 });
    try {
      const t0 = performance.now();
      await cluster.start();
      const t1 = performance.now();
      await cluster.stop();
      const t2 = performance.now();
      if (cluster.result().size !== n) throw new Error(`stop() assembled ${cluster.result().size} results, expected ${n}`);
      return [t1 - t0, t2 - t1];
    } finally {
      await cluster.stop().catch(() => {});
    }
  };
  try {
    await once(2); // warm-up: starts Spark's Python workers
    for (const n of sizes) {
      sparkStart[n] = [];
      sparkStop[n] = [];
      for (let r = 0; r < reps; r++) {
        const [a, b] = await once(n);
        sparkStart[n]!.push(a);
        sparkStop[n]!.push(b);
      }
    }
  } finally {
    await app.close();
  }
}
console.log(`BENCH_JSON ${JSON.stringify({ start, stop, idleRss, sparkStart, sparkStop })}`);
