/**
 * Benchmark — elastic state (issue 22): `state.commit()` of a 1 MB state on 4 partitions, and
 * logistic regression (example 07, embedded rows, 4 partitions) with one partition SIGKILLed at 50%
 * of the iterations, with elastic state and restarting from scratch, against the same run without a
 * fault, all in one run. Every run keeps a spare worker (option `spareWorker`), the run without a
 * fault too (it pays the spare's start); one elastic run without it shows what the spare saves.
 */
import { connect } from '@nats-io/transport-node';
import { unpack } from 'msgpackr';
import { Cluster } from '../src/index.js';
import { startNatsServer } from '../src/transport/nats-server.js';
import { progressSubject, syntheticRows, trainElastic, trainWithRetry, type LogisticConfig, type TrainRequest } from '../examples/07-logistic-regression.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { measure } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';

const SERVER = new URL('./servers/collective-bench-server.ts', import.meta.url);
const EXAMPLE = new URL('../examples/07-logistic-regression.ts', import.meta.url);
const PARTITIONS = 4;

type Mode = 'no fault' | 'SIGKILL at 50%, elastic state' | 'SIGKILL at 50%, elastic state, no spare' | 'SIGKILL at 50%, restart from scratch';

/**
 * Trains once on a fresh cluster; with a kill, partition 1 is SIGKILLed when partition 0 reports
 * half the iterations. Resolves with the wall time of training and, with a kill, the time from the
 * kill to partition 0's next report (the group computing again).
 */
async function trainOnce(
  mode: Mode,
  rows: Record<string, number>[],
  features: string[],
  req: TrainRequest,
  natsUrl: string,
): Promise<{ ms: number; recoveryMs?: number }> {
  const cluster = new Cluster<Record<string, number>, LogisticConfig>({
    server: EXAMPLE,
    data: rows,
    partitions: PARTITIONS,
    natsUrl,
    config: { features, label: 'label' },
    log: false,
    startTimeoutMs: 120_000,
    spareWorker: mode !== 'SIGKILL at 50%, elastic state, no spare',
  });
  const watcher = await connect({ servers: natsUrl });
  try {
    await cluster.start();
    let killed: { at: number; iteration: number } | undefined;
    let recoveryMs: number | undefined;
    if (mode !== 'no fault') {
      watcher.subscribe(progressSubject(cluster.id!), {
        callback: (_err, msg) => {
          const { iteration } = unpack(msg.data) as { iteration: number };
          // Computing again: an iteration done before the kill, done again (from a commit, or from scratch).
          if (killed && recoveryMs === undefined && iteration <= killed.iteration) recoveryMs = performance.now() - killed.at;
          if (killed || iteration < req.iterations / 2) return;
          killed = { at: performance.now(), iteration };
          process.kill(cluster.members.find((m) => m.partition === 1)!.pid, 'SIGKILL');
        },
      });
      await watcher.flush();
    }
    const t0 = performance.now();
    if (mode === 'SIGKILL at 50%, restart from scratch') await trainWithRetry(cluster, { ...req, commitEvery: 0 }, { attempts: 3 });
    else await trainElastic(cluster, req);
    return { ms: performance.now() - t0, ...(recoveryMs === undefined ? {} : { recoveryMs }) };
  } finally {
    await watcher.close();
    await cluster.stop().catch(() => {});
  }
}

export default async function elastic(ctx: BenchContext): Promise<SectionResult> {
  const iterations = ctx.quick ? 200 : 600;
  const rowsCount = ctx.quick ? 8_000 : 40_000;
  const commitEvery = 10;
  const s = section('elastic', 'Elastic state: commit, and a lost partition mid-training (4 partitions)', {
    partitions: PARTITIONS,
    stateBytes: 1024 * 1024,
    rows: rowsCount,
    iterations,
    commitEvery,
  });

  const commits = await withCluster(benchOptions(ctx, { server: SERVER, partitions: PARTITIONS, data: [] }), async (cluster) => {
    const replies = await cluster.requestAll<number[]>('commit', { bytes: 1024 * 1024, iterations: ctx.quick ? 50 : 200, warmup: 5 }, { timeoutMs: 600_000 });
    const r0 = replies.get(0)!;
    if (!r0.ok) throw new Error(`partition 0: ${r0.error.message}`);
    return r0.value;
  });
  const commit = measure('state.commit() of a 1 MB state (Float64Array), 4 partitions', 'ms', commits.value);
  s.rows.push(commit);

  const features = Array.from({ length: 10 }, (_, j) => `f${j}`);
  const rows = syntheticRows(rowsCount, features.length);
  const req: TrainRequest = { iterations, learningRate: 1, commitEvery };
  const nats = await startNatsServer();
  const modes: Mode[] = ['no fault', 'SIGKILL at 50%, elastic state', 'SIGKILL at 50%, elastic state, no spare', 'SIGKILL at 50%, restart from scratch'];
  const times = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  const recoveries = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  try {
    // Rounds alternate the modes, so the machine's load falls on each alike.
    for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
      for (const mode of modes) {
        ctx.log(`  elastic: ${mode}, round ${round + 1}`);
        const { ms, recoveryMs } = await trainOnce(mode, rows, features, req, nats.url);
        times[mode].push(ms);
        if (recoveryMs !== undefined) recoveries[mode].push(recoveryMs);
      }
    }
  } finally {
    await nats.stop();
  }
  const base = measure('logistic regression, no fault', 'ms', times['no fault']);
  const elasticRun = measure('logistic regression, one SIGKILL at 50%, elastic state', 'ms', times['SIGKILL at 50%, elastic state'], {
    note: `commit every ${commitEvery} iterations`,
  });
  const noSpare = measure('logistic regression, one SIGKILL at 50%, elastic state, no spare worker', 'ms', times['SIGKILL at 50%, elastic state, no spare']);
  const scratch = measure('logistic regression, one SIGKILL at 50%, restart from scratch', 'ms', times['SIGKILL at 50%, restart from scratch']);
  s.rows.push(base, elasticRun, noSpare, scratch);
  // The part a spare worker shortens, without the training's noise around it.
  for (const mode of ['SIGKILL at 50%, elastic state', 'SIGKILL at 50%, elastic state, no spare'] as const) {
    s.rows.push(measure(`SIGKILL → computing again, ${mode === 'SIGKILL at 50%, elastic state' ? 'spare worker' : 'no spare worker'}`, 'ms', recoveries[mode]));
  }
  s.notes.push(
    'Times are the driver’s, from asking to train to the model, the new attempt’s start included; every fault run kills partition 1 when partition 0 reports half the iterations. Every run but “no spare” keeps a spare worker (option spareWorker), the run without a fault too. “Computing again” is partition 0’s first report, after the kill, of an iteration it had done before (from the restored commit, or from scratch).',
  );
  s.targets.push({
    id: 'elastic.commit',
    target: 'state.commit() of a 1 MB state on 4 partitions: median < 5 ms',
    measured: `${commit.median.toFixed(2)} ms`,
    met: commit.median < 5,
  });
  s.targets.push({
    id: 'elastic.sigkill',
    target: 'logistic regression with one SIGKILL at 50%: ≤ 1.3× the run without a fault',
    measured: `${(elasticRun.median / base.median).toFixed(2)}× with elastic state (${(noSpare.median / base.median).toFixed(2)}× without a spare worker); restart from scratch ${(scratch.median / base.median).toFixed(2)}×`,
    met: elasticRun.median / base.median <= 1.3,
  });
  return s;
}
