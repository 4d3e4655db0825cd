/**
 * Distributed logistic regression on a Spark DataFrame, with partition servers that stay up
 * across iterations: each partition loads its rows into typed arrays once; every iteration it
 * computes its part of the gradient and the partitions `allReduce` it; partition 0 keeps the loss.
 * The driver reads the model from the results.
 *
 *   tsx examples/07-logistic-regression.ts [master] [rows]      (default: local[2], 20000 rows)
 *
 * Elastic state (docs/collectives.md#elastic-state): the model and the iteration are committed
 * every 10 iterations; when a partition's attempt fails or is replaced, the survivors keep their
 * state, go back to the last commit, and the new attempt (asked to train by `trainElastic`)
 * receives it from them, so a lost partition costs at most one commit interval, not the run.
 * `trainWithRetry` is the pattern without it, restarting from scratch (for comparison).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack } from 'msgpackr';
import { PartitionServer, type Member, type ElasticState, type PartitionContext } from 'spark-partition-server/server';
// Types only: the workers import this module for its server, and the driver's modules would slow
// every new attempt's start (a replaced partition's too). `trainOnSpark` imports `Cluster` when it runs.
import type { Cluster, ClusterOptions } from 'spark-partition-server';

/** Which columns hold the features and the 0/1 label. */
export interface LogisticConfig {
  features: string[];
  label: string;
}

/** What `train` is asked to do: full-batch gradient descent. */
export interface TrainRequest {
  iterations: number;
  learningRate: number;
  /**
   * Commit the model every this many iterations (default 10): a lost partition then costs at most
   * this many iterations. `0` trains without elastic state (a lost partition fails the call, and
   * `trainWithRetry` starts again from scratch).
   */
  commitEvery?: number;
}

/** A trained model, as partition 0 returns it. */
export interface LogisticModel {
  weights: number[];
  bias: number;
  /** Mean log-loss after each iteration. */
  losses: number[];
  /** Wall time of one iteration (gradient + allReduce + update), median, on partition 0. */
  msPerIteration: number;
  rows: number;
  /** Iterations partition 0 computed: more than `iterations` when a restore went back to a commit. */
  steps: number;
}

type Row = Record<string, number>;

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** The application subject partition 0 reports the loss on, one `{ iteration, loss }` (msgpack) per iteration. */
export function progressSubject(clusterId: string): string {
  return `sps.${clusterId}.app.logreg.progress`;
}

/** The state of a training run that survives a lost partition: the same on every partition. */
type Training = { iteration: number; w: Float64Array; losses: number[] };

/**
 * Gradient descent over this partition's rows, the gradient summed over all partitions each step.
 * With elastic state the model is committed every `commitEvery` iterations; when a partition is
 * lost, the others go back to the last commit and its new attempt receives it from them.
 */
async function train(ctx: PartitionContext, x: Float64Array, y: Float64Array, d: number, req: TrainRequest): Promise<LogisticModel> {
  const n = y.length;
  // One allReduce per iteration carries the gradient, the summed loss and the row count.
  const local = new Float64Array(d + 3);
  const times: number[] = [];
  let rows = 0;
  let computed = 0;
  const commitEvery = req.commitEvery ?? 10;
  const steps = async (s: Training): Promise<LogisticModel> => {
    const w = s.w; // weights, then the bias
    while (s.iteration < req.iterations) {
      const t0 = performance.now();
      local.fill(0);
      for (let i = 0; i < n; i++) {
        let z = w[d]!;
        for (let j = 0; j < d; j++) z += w[j]! * x[i * d + j]!;
        const err = 1 / (1 + Math.exp(-z)) - y[i]!;
        for (let j = 0; j < d; j++) local[j] = local[j]! + err * x[i * d + j]!;
        local[d] = local[d]! + err;
        local[d + 1] = local[d + 1]! + softplus(z) - y[i]! * z;
      }
      local[d + 2] = n;
      const total = await ctx.allReduce(local, 'sum');
      rows = total[d + 2]!;
      for (let j = 0; j <= d; j++) w[j] = w[j]! - (req.learningRate * total[j]!) / rows;
      s.losses.push(total[d + 1]! / rows);
      times.push(performance.now() - t0);
      computed++;
      if (ctx.partition === 0) ctx.nats.publish(progressSubject(ctx.clusterId), pack({ iteration: s.iteration, loss: s.losses.at(-1) }));
      s.iteration++;
      if (commitEvery > 0 && s.iteration % commitEvery === 0) await (s as ElasticState<Training>).commit();
    }
    times.sort((a, b) => a - b);
    return { weights: Array.from(w.subarray(0, d)), bias: w[d]!, losses: s.losses, msPerIteration: times[times.length >> 1] ?? 0, rows, steps: computed };
  };
  const initial: Training = { iteration: 0, w: new Float64Array(d + 1), losses: [] };
  if (commitEvery === 0) return steps(initial);
  // A restore replaces the state's fields: `steps` reads them again from the state.
  return ctx.elasticRun(ctx.elastic(initial), steps);
}

/** The partition server: rows into typed arrays at start, `train` as an endpoint, the model as partition 0's result. */
export default function logisticServer(config: LogisticConfig) {
  const d = config.features.length;
  let x = new Float64Array(0);
  let y = new Float64Array(0);
  let model: LogisticModel | undefined;
  return new PartitionServer<Row, LogisticConfig, LogisticModel>({
    init: async (rows) => {
      const xs: number[] = [];
      const ys: number[] = [];
      for await (const batch of rows.batches()) {
        for (const r of batch) {
          for (const f of config.features) xs.push(Number(r[f]));
          ys.push(Number(r[config.label]));
        }
      }
      x = Float64Array.from(xs);
      y = Float64Array.from(ys);
    },
    endpoints: {
      train: async (payload, ctx) => {
        const m = await train(ctx, x, y, d, payload as TrainRequest);
        if (ctx.partition === 0) model = m;
        return ctx.partition === 0 ? m : null;
      },
    },
    result: (ctx) => (ctx.partition === 0 && model ? [model] : []),
  });
}

/** Codes a failed `train` gets when a partition's attempt failed or was replaced mid-way. */
const RETRYABLE = new Set(['SPS_COLLECTIVE_ABORTED', 'SPS_NO_RESPONDER', 'SPS_REQUEST_TIMEOUT', 'SPS_COLLECTIVE_TIMEOUT']);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const attemptsOf = (members: Member[]): string => members.map((m) => `${m.partition}:${m.attempt}:${m.state === 'failed'}`).join(',');

/**
 * Resolves when any partition's attempt fails or is replaced (its process may be gone, so a request
 * to it would only time out), or when `done` is set.
 */
async function memberLost(cluster: Cluster<unknown, LogisticConfig>, done: { value: boolean }): Promise<'lost' | undefined> {
  const before = attemptsOf(cluster.members);
  while (!done.value) {
    if (attemptsOf(cluster.members) !== before || cluster.state === 'failed') return 'lost';
    await sleep(100);
  }
  return undefined;
}

/**
 * Asks every partition to train, and starts again from scratch (up to `attempts` times) when a
 * partition was lost on the way: the retry pattern without elastic state (`commitEvery: 0`), kept
 * for comparison. `onRetry` hears why.
 */
export async function trainWithRetry(
  cluster: Cluster<unknown, LogisticConfig>,
  req: TrainRequest,
  { attempts = 3, onRetry }: { attempts?: number; onRetry?: (why: string) => void } = {},
): Promise<LogisticModel> {
  for (let attempt = 1; ; attempt++) {
    const done = { value: false };
    const asked = cluster.requestAll<LogisticModel | null>('train', req, { timeoutMs: 600_000 });
    const outcome = await Promise.race([asked, memberLost(cluster, done)]);
    done.value = true;
    let why: string;
    if (outcome === 'lost' || outcome === undefined) {
      asked.catch(() => {});
      why = `a partition's attempt failed or was replaced (members ${attemptsOf(cluster.members)})`;
    } else {
      const failed = [...outcome].filter(([, r]) => !r.ok);
      const first = outcome.get(0);
      if (failed.length === 0 && first?.ok && first.value) return first.value;
      if (!failed.every(([, r]) => !r.ok && RETRYABLE.has(r.error.code))) throw failed[0]?.[1].ok === false ? failed[0][1].error : new Error('no model');
      why = failed.map(([p, r]) => `partition ${p}: ${r.ok ? '' : r.error.code}`).join(', ');
    }
    if (attempt >= attempts) throw new Error(`training failed ${attempts} times; last: ${why}`);
    onRetry?.(why);
    // Every partition serving again (a new generation): train from scratch.
    while (cluster.members.length < cluster.partitions || cluster.members.some((m) => m.state !== 'serving')) {
      if (cluster.state === 'failed') throw new Error('the cluster failed while waiting to retry');
      await sleep(100);
    }
  }
}

/**
 * Trains with elastic state: a lost partition costs the work since the last commit, not the run.
 * `requestAll` with `rejoin` asks a replaced partition's new attempt to train too; it joins the
 * survivors' restore. In barrier mode Spark replaces every attempt: each is asked again, and the
 * group starts over from the initial state.
 */
export async function trainElastic(
  cluster: Cluster<unknown, LogisticConfig>,
  req: TrainRequest,
  options: { onRejoin?: (partition: number, attempt: number) => void } = {},
): Promise<LogisticModel> {
  const replies = await cluster.requestAll<LogisticModel | null>('train', req, { timeoutMs: 600_000, rejoin: options });
  for (const [, r] of replies) if (!r.ok) throw r.error;
  const first = replies.get(0);
  if (!first?.ok || !first.value) throw new Error('partition 0 returned no model');
  return first.value;
}

/** The share of rows the model classifies right (probability ≥ 0.5 means 1). */
export function accuracy(model: Pick<LogisticModel, 'weights' | 'bias'>, rows: Row[], config: LogisticConfig): number {
  let right = 0;
  for (const r of rows) {
    let z = model.bias;
    config.features.forEach((f, j) => (z += model.weights[j]! * r[f]!));
    if ((z >= 0 ? 1 : 0) === r[config.label]) right++;
  }
  return right / rows.length;
}

/**
 * A reproducible dataset: standard normal features, a label drawn from the logistic model of
 * fixed true weights (so the best accuracy is below 1 and both trainers can reach it).
 */
export function syntheticRows(count: number, features: number, seed = 42): Row[] {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const truth = Array.from({ length: features }, (_, j) => (j % 2 ? -1 : 1) * (1 + j / features));
  return Array.from({ length: count }, () => {
    const row: Row = {};
    let z = 0.5;
    truth.forEach((t, j) => {
      const v = normal();
      row[`f${j}`] = v;
      z += t * v;
    });
    row.label = uniform() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    return row;
  });
}

/** Trains on a JSON-lines file through Spark; returns the model from partition 0's result. */
export async function trainOnSpark(
  options: Pick<ClusterOptions, 'master' | 'spark' | 'sparkConf' | 'log' | 'barrier'> & {
    path: string;
    features: string[];
    partitions: number;
    request: TrainRequest;
  },
): Promise<LogisticModel> {
  const { path, features, partitions, request, ...spark } = options;
  const { Cluster } = await import('spark-partition-server');
  const cluster = new Cluster<Row, LogisticConfig>({
    server: new URL(import.meta.url),
    source: { json: path },
    partitions,
    config: { features, label: 'label' },
    startTimeoutMs: 180_000,
    ...spark,
  });
  try {
    await cluster.start();
    await trainElastic(cluster, request);
    await cluster.stop();
    const [model] = cluster.result().get(0) as LogisticModel[];
    return model!;
  } finally {
    await cluster.stop().catch(() => {});
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const master = process.argv[2] ?? 'local[2]';
  const count = Number(process.argv[3] ?? 20_000);
  const features = Array.from({ length: 10 }, (_, j) => `f${j}`);
  const rows = syntheticRows(count, features.length);
  const dir = mkdtempSync(join(tmpdir(), 'sps-logreg-'));
  try {
    const path = join(dir, 'rows.json');
    writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));
    const model = await trainOnSpark({ master, path, features, partitions: 2, barrier: true, request: { iterations: 100, learningRate: 1 } });
    console.log(
      `trained on ${model.rows} rows: loss ${model.losses[0]!.toFixed(4)} → ${model.losses.at(-1)!.toFixed(4)}, ${model.msPerIteration.toFixed(2)} ms per iteration`,
    );
    console.log(
      `accuracy ${(accuracy(model, rows, { features, label: 'label' }) * 100).toFixed(2)}%, weights ${model.weights.map((w) => w.toFixed(3)).join(', ')}, bias ${model.bias.toFixed(3)}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
