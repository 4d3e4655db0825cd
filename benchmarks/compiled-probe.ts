/**
 * Embedded start/stop and idle memory with the library compiled to JavaScript (as the npm package
 * ships it), alternating a JavaScript server module and the same server in TypeScript (compiled by
 * the driver, once per run, into a fresh compile cache), so workers start on plain Node either way.
 * Not run directly: lib/compiled.ts compiles the project and runs the compiled copy of this file
 * with `node compiled-probe.js <sizes,csv> <reps> [<spark master>]`; it prints one `BENCH_JSON {...}`
 * line. Given a Spark master, it instead times library start/stop on one shared Spark application
 * there (after one untimed warm-up run per mode), as benchmark 3 does from the TypeScript sources,
 * with worker processes and with partitions as threads (`isolation: 'thread'`) alternating.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, SparkApplication, type ClusterOptions, type Isolation } from '../src/index.js';
import { compileServer } from '../src/driver/launch/compile-server.js';
import { BENCH_SPARK_CONF } from './lib/spark-app.js';
import { rssOf } from './lib/proc.js';
import { sleep } from './lib/timing.js';
import type { ServerStats } from './servers/bench-server.js';

const server = new URL('./servers/bench-server.js', import.meta.url);
/** The same server's TypeScript source, copied next to it by lib/compiled.ts. */
const tsServer = new URL('./servers/bench-server.ts', import.meta.url);
const sizes = (process.argv[2] ?? '2').split(',').map(Number);
const reps = Number(process.argv[3] ?? '1');
const sparkMaster = process.argv[4];
const start: Record<string, number[]> = {};
const stop: Record<string, number[]> = {};
const startTs: Record<string, number[]> = {};
const stopTs: Record<string, number[]> = {};
const idleRss: number[] = [];
const idleRssTs: number[] = [];
const compileMissMs: number[] = [];
const compileHitMs: number[] = [];
const compileInlineMissMs: number[] = [];

/** One start and stop of a cluster; resolves with [start ms, stop ms]. */
async function timedStartStop(options: ClusterOptions<unknown, unknown> & { partitions: number }): Promise<[number, number]> {
  const n = options.partitions;
  const cluster = new Cluster(options);
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
}

/** RSS in MB of 3 idle partition servers (no rows) of `module`. */
async function idleMb(module: URL): Promise<number[]> {
  const out: number[] = [];
  const idle = new Cluster({ server: module, data: [], partitions: 3, log: false });
  try {
    await idle.start();
    await sleep(500);
    for (const [, r] of await idle.requestAll<ServerStats>('stats')) if (r.ok) out.push((await rssOf(r.value.pid)) / 2 ** 20);
  } finally {
    await idle.stop().catch(() => {});
  }
  return out;
}

if (!sparkMaster) {
  // A fresh compile cache: the first compile is what a run with changed sources pays, the rest hit.
  const cache = await mkdtemp(join(tmpdir(), 'sps-bench-compile-'));
  process.env.SPS_COMPILE_CACHE = cache;
  const libraryDir = fileURLToPath(new URL('../src', import.meta.url));
  try {
    for (const into of [compileMissMs, compileHitMs]) {
      const t0 = performance.now();
      await compileServer(fileURLToPath(tsServer), { dir: libraryDir });
      into.push(performance.now() - t0);
    }
    // What a run of processes on this machine (or of threads) compiles: the worker, the library and its packages inlined.
    const t1 = performance.now();
    await compileServer(fileURLToPath(tsServer), { worker: join(libraryDir, 'worker/worker.js'), inline: true });
    compileInlineMissMs.push(performance.now() - t1);
    for (const n of sizes) {
      start[n] = [];
      stop[n] = [];
      startTs[n] = [];
      stopTs[n] = [];
      for (let r = 0; r < reps; r++) {
        // Alternating, so both sides see the same machine.
        const [a, b] = await timedStartStop({ server, data: { range: { end: 10_000 } }, partitions: n, log: false, startTimeoutMs: 60_000 });
        start[n]!.push(a);
        stop[n]!.push(b);
        const [c, d] = await timedStartStop({ server: tsServer, data: { range: { end: 10_000 } }, partitions: n, log: false, startTimeoutMs: 60_000 });
        startTs[n]!.push(c);
        stopTs[n]!.push(d);
      }
    }
    idleRss.push(...(await idleMb(server)));
    idleRssTs.push(...(await idleMb(tsServer)));
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}
const sparkStart: Record<string, number[]> = {};
const sparkStop: Record<string, number[]> = {};
const sparkStartThread: Record<string, number[]> = {};
const sparkStopThread: Record<string, number[]> = {};
let sparkThreadSkipped: string | undefined;
if (sparkMaster) {
  const app = await SparkApplication.start({ master: sparkMaster, conf: BENCH_SPARK_CONF, log: false, startTimeoutMs: 180_000 });
  const once = (n: number, isolation: Isolation) =>
    timedStartStop({ server, spark: app, source: { range: { end: 10_000 } }, partitions: n, isolation, log: false, startTimeoutMs: 120_000 });
  // Both isolation modes alternate, so both see the same machine.
  const modes: [Isolation, Record<string, number[]>, Record<string, number[]>][] = [
    ['process', sparkStart, sparkStop],
    ['thread', sparkStartThread, sparkStopThread],
  ];
  try {
    // Warm-up: starts Spark's Python workers (and, for threads, loads the partition host once). A
    // mode that fails here (a library without threads on Spark) is left out, and says why.
    await once(2, 'process');
    try {
      await once(2, 'thread');
    } catch (err) {
      sparkThreadSkipped = (err as Error).message.split('\n')[0]!;
      modes.pop();
    }
    for (const n of sizes) {
      for (const [, starts, stops] of modes) [starts[n], stops[n]] = [[], []];
      for (let r = 0; r < reps; r++) {
        for (const [m, starts, stops] of modes) {
          const [a, b] = await once(n, m);
          starts[n]!.push(a);
          stops[n]!.push(b);
        }
      }
    }
  } finally {
    await app.close();
  }
}
console.log(
  `BENCH_JSON ${JSON.stringify({ start, stop, startTs, stopTs, idleRss, idleRssTs, compileMissMs, compileHitMs, compileInlineMissMs, sparkStart, sparkStop, sparkStartThread, sparkStopThread, sparkThreadSkipped })}`,
);
