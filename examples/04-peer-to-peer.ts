/**
 * Example 4, partitions computing together: each partition computes the mean and variance of its
 * numbers, then the partitions combine them with an `allReduce` (no driver in the loop), and
 * partition 0 asks its neighbour for a sample over `ctx.request`. The driver only starts it,
 * asks partition 0 for the answer, and stops.
 *
 *     npx tsx examples/04-peer-to-peer.ts
 */
import { fileURLToPath } from 'node:url';
import { Cluster, PartitionServer, type PartitionContext } from 'spark-partition-server';

/** What partition `stats` answers: global figures, the same on every partition. */
export interface GlobalStats {
  count: number;
  mean: number;
  variance: number;
  /** The first rows of the next partition, fetched from it directly. */
  neighbourSample: number[];
}

/** The server, made once per partition. */
export default function peerStats() {
  const rows: number[] = [];
  return new PartitionServer<number>({
    init: async (source) => {
      for await (const v of source) rows.push(v);
    },
    endpoints: {
      head: () => rows.slice(0, 3),
      // Every partition must make the same collective calls in the same order: the driver calls
      // `stats` on all of them at once (requestAll).
      stats: async (_payload, ctx: PartitionContext): Promise<GlobalStats> => {
        await ctx.waitForPeers();
        const sum = rows.reduce((a, b) => a + b, 0);
        const squares = rows.reduce((a, b) => a + b * b, 0);
        // One collective: [count, sum, sum of squares], summed over all partitions, as float64.
        const [count, total, totalSquares] = await ctx.allReduce(Float64Array.of(rows.length, sum, squares), 'sum');
        const mean = total! / count!;
        const neighbourSample = await ctx.request<number[]>((ctx.partition + 1) % ctx.partitions, 'head');
        return { count: count!, mean, variance: totalSquares! / count! - mean * mean, neighbourSample };
      },
    },
  });
}

/** Runs the example; `print` gets its lines. Returns what the test checks. */
export async function main(print: (line: string) => void = console.log) {
  const cluster = new Cluster<number>({ server: new URL(import.meta.url), data: { range: { end: 1000 } }, partitions: 3 });
  await cluster.start();
  try {
    const replies = await cluster.requestAll<GlobalStats>('stats');
    const stats = [...replies].map(([p, r]) => {
      if (!r.ok) throw new Error(`partition ${p}: ${r.error.message}`);
      print(
        `partition ${p}: count ${r.value.count}, mean ${r.value.mean}, variance ${r.value.variance.toFixed(2)}, neighbour's first rows ${r.value.neighbourSample.join(',')}`,
      );
      return r.value;
    });
    return { stats };
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
