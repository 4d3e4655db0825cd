import { Cluster, type ClusterOptions } from '../../src/index.js';
import type { BenchConfig } from '../servers/bench-server.js';
import type { BenchContext } from './types.js';

/** The bench partition server module. */
export const BENCH_SERVER = new URL('../servers/bench-server.ts', import.meta.url);

/** Options of a bench cluster: the bench server, quiet logs, the runner's worker environment. */
export function benchOptions(
  ctx: BenchContext,
  o: Partial<ClusterOptions<unknown, BenchConfig>> & { config?: BenchConfig },
): ClusterOptions<unknown, BenchConfig> {
  const lines: string[] = [];
  return {
    server: BENCH_SERVER,
    partitions: 4,
    startTimeoutMs: 120_000,
    stopTimeoutMs: 60_000,
    ...o,
    env: { ...ctx.workerEnv, ...(o.env ?? {}) },
    // Worker output is kept (last lines) and shown only when something fails.
    log: (line) => {
      lines.push(line);
      if (lines.length > 40) lines.shift();
      if (/failed|error/i.test(line)) ctx.log(`  worker: ${line}`);
    },
  };
}

/**
 * Starts a cluster, runs `fn` with it, and always stops it (also when `fn` throws).
 * @returns what `fn` returned, and the start and stop times in ms.
 */
export async function withCluster<T>(
  opts: ClusterOptions<unknown, BenchConfig>,
  fn: (cluster: Cluster<unknown, BenchConfig>) => Promise<T>,
): Promise<{ value: T; startMs: number; stopMs: number }> {
  const cluster = new Cluster<unknown, BenchConfig>(opts);
  const t0 = performance.now();
  try {
    await cluster.start();
    const startMs = performance.now() - t0;
    const value = await fn(cluster);
    const t1 = performance.now();
    await cluster.stop();
    return { value, startMs, stopMs: performance.now() - t1 };
  } finally {
    await cluster.stop().catch(() => {});
  }
}

/** Sums the numeric replies of a scatter/gather; throws if any partition failed. */
export function sumReplies(replies: Map<number, { ok: boolean; value?: unknown; error?: Error }>): number {
  let sum = 0;
  for (const [p, r] of replies) {
    if (!r.ok) throw new Error(`partition ${p} failed: ${r.error?.message}`);
    sum += r.value as number;
  }
  return sum;
}
