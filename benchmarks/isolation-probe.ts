/**
 * Partitions as processes vs as threads (option `isolation`), with the library compiled to
 * JavaScript: embedded start and stop at each size, RSS per partition of idle partitions (the
 * worker processes' RSS summed, or the one partition host's, over the partitions), and the latency
 * of one partition's requests, and its throughput with many requests in flight. Both modes alternate in one run, so both see the same machine. Not
 * run directly: isolation.ts runs the compiled copy with `node isolation-probe.js <sizes,csv> <reps>
 * <idle partitions> <requests> [<thread-only sizes,csv>]` (0 idle partitions or 0 requests: that
 * measurement is left out); it prints one `BENCH_JSON {...}` line.
 * Thread-only sizes (more partitions than this machine holds as processes) are started, pinged
 * with one `requestAll`, and stopped.
 */
import { Cluster, type ClusterOptions, type Isolation } from '../src/index.js';
import { rssOf } from './lib/proc.js';
import { sleep } from './lib/timing.js';

const server = new URL('./servers/bench-server.js', import.meta.url);
const sizes = (process.argv[2] ?? '8').split(',').map(Number);
const reps = Number(process.argv[3] ?? '1');
const idlePartitions = Number(process.argv[4] ?? '8');
const requests = Number(process.argv[5] ?? '200');
const threadOnly = (process.argv[6] ?? '').split(',').filter(Boolean).map(Number);
const MODES: Isolation[] = ['process', 'thread'];

/** What the probe prints, by mode. */
export interface IsolationOut {
  start: Record<string, Record<string, number[]>>;
  stop: Record<string, Record<string, number[]>>;
  /** MB per idle partition. */
  rssPerPartition: Record<string, number>;
  /** ms per request to one partition (NATS, sequential). */
  latency: Record<string, number[]>;
  /** Requests per second to one partition (NATS, IN_FLIGHT at a time), one figure per round. */
  throughput: Record<string, number[]>;
  /** Thread-only sizes: start, one `requestAll` ping, stop (ms), and RSS per partition (MB), by size. */
  threadOnly: Record<string, { start: number; ping: number; stop: number; rssPerPartition: number }>;
  /** Runs that failed (a loaded machine may time a partition's connect out), by what they measured. */
  failed: Record<string, string>;
}

const out: IsolationOut = { start: {}, stop: {}, rssPerPartition: {}, latency: {}, throughput: {}, threadOnly: {}, failed: {} };
/** Requests in flight at once for the throughput figure. */
const IN_FLIGHT = 64;
/** Rounds of the throughput figure, both modes in each. */
const THROUGHPUT_ROUNDS = 3;

/** Requests per second of `total` pings to partition 0, IN_FLIGHT at a time. */
async function throughputOf(c: Cluster, total: number): Promise<number> {
  let sent = 0;
  const sender = async (): Promise<void> => {
    while (sent++ < total) await c.request(0, 'ping');
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
  return total / ((performance.now() - t0) / 1000);
}

/** Runs one measurement; a failure is recorded under `what`, and the others go on. */
async function attempt(what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    out.failed[what] = (err as Error).message.split('\n')[0]!;
  }
}

function options(isolation: Isolation, partitions: number, data: ClusterOptions<unknown, unknown>['data']): ClusterOptions<unknown, unknown> {
  return { server, data, partitions, isolation, log: false, startTimeoutMs: 300_000, registerTimeoutMs: 300_000, stopTimeoutMs: 120_000 };
}

/** Starts a cluster, runs `fn` with it, and always stops it; resolves with [start ms, stop ms]. */
async function run(opts: ClusterOptions<unknown, unknown>, fn: (c: Cluster) => Promise<void> = async () => {}): Promise<[number, number]> {
  const cluster = new Cluster(opts);
  try {
    const t0 = performance.now();
    await cluster.start();
    const t1 = performance.now();
    await fn(cluster);
    const t2 = performance.now();
    await cluster.stop();
    return [t1 - t0, performance.now() - t2];
  } finally {
    await cluster.stop().catch(() => {});
  }
}

// One start per mode before any figure: the driver compiles a run's worker program once and keeps
// it (by content), so only a run's first start ever pays for that compile.
for (const m of MODES) await attempt(`warm-up ${m}`, async () => void (await run(options(m, 1, []))));
for (const n of sizes) {
  for (const m of MODES) {
    (out.start[m] ??= {})[n] = [];
    (out.stop[m] ??= {})[n] = [];
  }
  for (let r = 0; r < reps; r++) {
    for (const m of MODES) {
      await attempt(`start/stop ${n} ${m}`, async () => {
        const [a, b] = await run(options(m, n, { range: { end: 10_000 } }));
        out.start[m]![n]!.push(a);
        out.stop[m]![n]!.push(b);
      });
    }
  }
}
for (const m of MODES) {
  // 0 idle partitions or 0 requests: that measurement is left out (a smoke run's).
  if (idlePartitions > 0) {
    await attempt(`idle ${idlePartitions} ${m}`, async () => {
      await run(options(m, idlePartitions, []), async (c) => {
        await sleep(1000);
        const pids = new Set(c.members.map((x) => x.pid));
        let rss = 0;
        for (const pid of pids) rss += await rssOf(pid);
        out.rssPerPartition[m] = rss / 2 ** 20 / idlePartitions;
      });
    });
  }
  if (requests > 0) {
    await run(options(m, 2, { range: { end: 1000 } }), async (c) => {
      for (let i = 0; i < 50; i++) await c.request(0, 'ping');
      const samples: number[] = [];
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        await c.request(0, 'ping');
        samples.push(performance.now() - t0);
      }
      out.latency[m] = samples;
    });
  }
}
if (requests > 0) {
  // Rounds alternate the modes: a busy moment of the machine falls on both.
  for (let r = 0; r < THROUGHPUT_ROUNDS; r++) {
    for (const m of MODES) {
      await attempt(`throughput ${m}`, async () => {
        await run(options(m, 2, { range: { end: 1000 } }), async (c) => {
          await throughputOf(c, requests);
          (out.throughput[m] ??= []).push(await throughputOf(c, 10 * requests));
        });
      });
    }
  }
}
for (const n of threadOnly) {
  // Each figure is kept once measured (a stop that times out still reports the start and the ping); JSON makes NaN null.
  const r = (out.threadOnly[n] = { start: Number.NaN, ping: Number.NaN, stop: Number.NaN, rssPerPartition: Number.NaN });
  const cluster = new Cluster(options('thread', n, { range: { end: 10 * n } }));
  await attempt(`start, requestAll, stop ${n} thread`, async () => {
    try {
      let t0 = performance.now();
      await cluster.start();
      r.start = performance.now() - t0;
      t0 = performance.now();
      const replies = await cluster.requestAll('ping');
      r.ping = performance.now() - t0;
      const ok = [...replies.values()].filter((x) => x.ok).length;
      if (ok !== n) throw new Error(`requestAll: ${ok} of ${n} partitions answered`);
      r.rssPerPartition = (await rssOf(cluster.members[0]!.pid!)) / 2 ** 20 / n;
      t0 = performance.now();
      await cluster.stop();
      r.stop = performance.now() - t0;
    } finally {
      await cluster.stop().catch(() => {});
    }
  });
}
process.stdout.write(`BENCH_JSON ${JSON.stringify(out)}\n`);
