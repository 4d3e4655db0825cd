import { PartitionServer, type PartitionContext } from '../../src/index.js';

/** One timed series: `iterations` calls of one collective after `warmup` untimed ones. */
export interface CollectiveRun {
  op: 'barrier' | 'allReduce' | 'allReduce-ring' | 'allGather';
  /** Bytes per partition (allReduce: float32 elements × 4; allGather: a string of that length). */
  bytes: number;
  iterations: number;
  warmup: number;
  /** How the partitions send (default: the library's default, `auto`). */
  transport?: 'nats' | 'direct' | 'auto';
  /** allReduce: write the result into the vector (refilled before each call, untimed, as the bare ring does). */
  inPlace?: boolean;
}

// A benchmark measures; a slow call on a busy machine is a figure, not a failure.
const timeoutMs = 120_000;

async function once(ctx: PartitionContext, run: CollectiveRun, value: unknown): Promise<void> {
  const opts = { timeoutMs, transport: run.transport };
  if (run.op === 'barrier') await ctx.barrier(opts);
  else if (run.op === 'allGather') await ctx.allGather(value, opts);
  else await ctx.allReduce(value as Float32Array, 'sum', { ...opts, inPlace: run.inPlace, algorithm: run.op === 'allReduce-ring' ? 'ring' : 'direct' });
}

/** Times collectives inside the partition, call by call (what Spark's side times inside its tasks too). */
export default new PartitionServer({
  endpoints: {
    run: async (payload, ctx) => {
      const run = payload as CollectiveRun;
      const value = run.op.startsWith('allReduce') ? new Float32Array(run.bytes / 4).fill(ctx.partition + 1) : 'x'.repeat(run.bytes);
      const refill = (): void => void (run.inPlace && (value as Float32Array).fill(ctx.partition + 1));
      for (let i = 0; i < run.warmup; i++) {
        refill();
        await once(ctx, run, value);
      }
      const times: number[] = [];
      for (let i = 0; i < run.iterations; i++) {
        refill();
        const t0 = performance.now();
        await once(ctx, run, value);
        times.push(performance.now() - t0);
      }
      return times;
    },
    /** Times `state.commit()` of a state of `bytes` (a Float64Array), call by call, inside the partition. */
    commit: async (payload, ctx) => {
      const { bytes, iterations, warmup } = payload as { bytes: number; iterations: number; warmup: number };
      const state = ctx.elastic({ iteration: 0, model: new Float64Array(bytes / 8).fill(ctx.partition) });
      for (let i = 0; i < warmup; i++) await state.commit({ timeoutMs });
      const times: number[] = [];
      for (let i = 0; i < iterations; i++) {
        state.iteration++;
        const t0 = performance.now();
        await state.commit({ timeoutMs });
        times.push(performance.now() - t0);
      }
      return times;
    },
  },
});
