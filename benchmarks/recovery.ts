/**
 * Benchmark 8 — recovery: how long a fault takes from injection to serving again.
 * - SIGKILL of a worker, embedded and on Spark `local[4]`: kill → the next attempt serving (20 kills each).
 * - A hung worker (SIGSTOP): stop → declared hung, and stop → the next attempt serving, with
 *   `hangTimeoutMs` at 2.5 heartbeats.
 * - A restart of a NATS server the user runs (`natsUrl`): the new process starting → every
 *   partition answering again, with requests in flight throughout and every result at stop.
 * Times are polled every 2 ms from the driver's membership (the resolution of these figures).
 */
import { Cluster } from '../src/index.js';
import { startNatsServer } from '../src/transport/nats-server.js';
import { benchOptions } from './lib/cluster.js';
import { sparkUnavailable } from './lib/spark.js';
import { summarize } from './lib/stats.js';
import { measure, now, sleep } from './lib/timing.js';
import { isSmoke, reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';

const POLL_MS = 2;

/** Resolves with the time `check` first held (polled every 2 ms), or rejects after `limitMs`. */
export async function when(check: () => boolean | Promise<boolean>, limitMs: number, what: string): Promise<number> {
  const deadline = now() + limitMs;
  while (now() < deadline) {
    if (await check()) return now();
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: not within ${limitMs} ms`);
}

/** Kills a serving partition's worker `kills` times (round robin) and returns kill → next attempt serving, ms. */
async function killRecovery(cluster: Cluster, kills: number): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < kills; k++) {
    const p = k % cluster.partitions;
    const m = cluster.members[p]!;
    const t0 = now();
    process.kill(m.pid, 'SIGKILL');
    const t1 = await when(() => cluster.members[p]!.attempt > m.attempt && cluster.members[p]!.state === 'serving', 120_000, `partition ${p} serving again`);
    out.push(t1 - t0);
    await cluster.request(p, 'ping');
  }
  return out;
}

/** Starts `cluster`, kills its workers `kills` times, and adds the figure and its target (`goalMs` for the slowest); always stops it. */
async function killFigure(s: SectionResult, where: string, cluster: Cluster, kills: number, goalMs: number): Promise<void> {
  try {
    await cluster.start();
    const samples = await killRecovery(cluster, kills);
    s.rows.push(measure(`SIGKILL → serving again, ${where}`, 'ms', samples));
    const max = Math.max(...samples);
    s.targets.push({
      id: `recovery.kill-${where.split(' ')[0]!.toLowerCase()}`,
      target: `SIGKILL recovered in < ${goalMs / 1000} s, ${where} (max)`,
      measured: `${max.toFixed(0)} ms max`,
      met: max < goalMs,
    });
  } finally {
    await cluster.stop().catch(() => {});
  }
}

export default async function recovery(ctx: BenchContext): Promise<SectionResult> {
  // A smoke run stops at the first figure: one kill shows the path works.
  const kills = isSmoke() ? 1 : ctx.quick ? 3 : 20;
  const hangs = ctx.quick ? 1 : 5;
  const restarts = ctx.quick ? 1 : 5;
  const heartbeatMs = 200;
  const hangTimeoutMs = 500;
  const s = section('recovery', '8. Recovery from faults (SIGKILL, hung worker, NATS server restart)', {
    partitions: 4,
    kills,
    hangs,
    restarts,
    heartbeatMs,
    hangTimeoutMs,
    pollMs: POLL_MS,
  });

  ctx.log(`  SIGKILL × ${kills}, embedded …`);
  await killFigure(s, 'embedded', new Cluster(benchOptions(ctx, { data: { range: { end: 4000 } }, partitions: 4, maxFailures: kills + 2 })), kills, 1000);

  const noSpark = sparkUnavailable();
  if (noSpark) s.skipped.push({ name: 'SIGKILL → serving again, Spark local[4]', reason: noSpark });
  else {
    ctx.log(`  SIGKILL × ${kills}, Spark local[4] …`);
    const spark = new Cluster(
      benchOptions(ctx, {
        master: 'local[4]',
        source: { range: { end: 4000 } },
        partitions: 4,
        maxFailures: kills + 2,
        sparkConf: { 'spark.ui.enabled': 'false' },
      }),
    );
    try {
      await killFigure(s, 'Spark local[4]', spark, kills, 2000);
    } catch (err) {
      s.skipped.push({ name: 'SIGKILL → serving again, Spark local[4]', reason: reasonOf(err) });
    }
  }

  ctx.log(`  hung worker × ${hangs} …`);
  const detected: number[] = [];
  const served: number[] = [];
  const lines: { at: number; line: string }[] = [];
  const hungOptions = benchOptions(ctx, { data: { range: { end: 4000 } }, partitions: 4, heartbeatMs, hangTimeoutMs, maxFailures: hangs + 2 });
  const keep = hungOptions.log;
  // The launcher's "hung" line, timed as it comes.
  hungOptions.log = (line) => {
    lines.push({ at: now(), line });
    if (typeof keep === 'function') keep(line);
  };
  const hung = new Cluster(hungOptions);
  try {
    await hung.start();
    for (let k = 0; k < hangs; k++) {
      const p = k % 4;
      const m = hung.members[p]!;
      const t0 = now();
      process.kill(m.pid, 'SIGSTOP');
      const tag = `p${p}/a${m.attempt}] hung:`;
      await when(() => lines.some((l) => l.at >= t0 && l.line.includes(tag)), 60_000, `partition ${p} declared hung`);
      detected.push(lines.find((l) => l.at >= t0 && l.line.includes(tag))!.at - t0);
      served.push(
        (await when(() => hung.members[p]!.attempt > m.attempt && hung.members[p]!.state === 'serving', 60_000, `partition ${p} serving again`)) - t0,
      );
    }
    s.rows.push(measure(`SIGSTOP → declared hung (heartbeat ${heartbeatMs} ms, hangTimeoutMs ${hangTimeoutMs})`, 'ms', detected));
    s.rows.push(measure('SIGSTOP → serving again', 'ms', served));
    const worst = Math.max(...detected);
    s.targets.push({
      id: 'recovery.hung-detect',
      target: 'hung partition detected in < 3× the heartbeat interval (hangTimeoutMs = 2.5 heartbeats)',
      measured: `${worst.toFixed(0)} ms max = ${(worst / heartbeatMs).toFixed(2)}× heartbeat`,
      met: worst < 3 * heartbeatMs,
    });
  } finally {
    await hung.stop().catch(() => {});
  }

  ctx.log(`  NATS server restart × ${restarts} …`);
  let server = await startNatsServer();
  const back: number[] = [];
  let failedRequests = 0;
  let answered = 0;
  const restart = new Cluster(benchOptions(ctx, { data: { range: { end: 4000 } }, partitions: 4, natsUrl: server.url }));
  try {
    await restart.start();
    for (let k = 0; k < restarts; k++) {
      await server.stop();
      const t0 = now();
      server = await startNatsServer({ port: server.port });
      const t1 = await when(
        async () => {
          const r = await restart.requestAll('ping', undefined, { timeoutMs: 500 });
          return [...r.values()].every((x) => x.ok);
        },
        60_000,
        'every partition answering again',
      );
      back.push(t1 - t0);
      // After the restart, nothing is lost: a burst of requests, each answered once.
      const burst = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => restart.request(i % 4, 'ping')));
      failedRequests += burst.filter((b) => b.status === 'rejected').length;
      answered += burst.filter((b) => b.status === 'fulfilled').length;
    }
    await restart.stop();
    const results = restart.result().size;
    s.rows.push(measure('NATS server restarted → every partition answering', 'ms', back));
    s.notes.push(`NATS restart: ${answered} requests answered after the restarts, ${failedRequests} failed; ${results} of 4 results at stop.`);
    const worst = Math.max(...back);
    s.targets.push({
      id: 'recovery.nats-restart',
      target: 'NATS server restart survived in < 2 s with nothing lost',
      measured: `${worst.toFixed(0)} ms max; ${failedRequests} requests failed; ${results}/4 results`,
      met: worst < 2000 && failedRequests === 0 && results === 4,
    });
  } finally {
    await restart.stop().catch(() => {});
    await server.stop();
  }
  s.notes.push(
    `Recovery is measured from the signal (or the new nats-server's start) to the driver's membership showing the next attempt serving, polled every ${POLL_MS} ms; medians ${summarize(back).median.toFixed(0)} ms for the NATS restart.`,
  );
  return s;
}
