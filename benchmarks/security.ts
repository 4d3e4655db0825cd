/**
 * Benchmark 7 — the cost of the secured bus: request latency, request throughput and the start
 * time of 8 partitions on a plain bus (an anonymous nats-server, as before the bus was secured),
 * with per-run nkey identities and subject permissions (the default), and with those plus TLS.
 * The three run in the same process, alternating round by round, on the same data.
 */
import { startNatsServer } from '../src/transport/nats-server.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { summarize } from './lib/stats.js';
import { measure, sampleAsync } from './lib/timing.js';
import { isSmoke, section, type BenchContext, type SectionResult } from './lib/types.js';

type Mode = 'plain' | 'auth' | 'auth+tls';
const MODES: Mode[] = ['plain', 'auth', 'auth+tls'];

export default async function security(ctx: BenchContext): Promise<SectionResult> {
  const rounds = ctx.quick ? 1 : 3;
  const partitions = ctx.quick ? 2 : 8;
  // A smoke run keeps every mode (each is its own path) with few requests.
  const smoke = isSmoke();
  const warmup = smoke ? 20 : 200;
  const latencyBounds = { count: smoke ? 20 : ctx.quick ? 200 : 2000, maxMs: ctx.quick ? 2000 : 8000 };
  const burst = { total: smoke ? 128 : ctx.quick ? 500 : 20_000, inFlight: 64 };
  const s = section('security', '7. Cost of the secured bus (plain vs nkey auth vs auth + TLS)', {
    partitions,
    rounds,
    latencySamples: latencyBounds.count,
    throughput: burst,
  });
  const latency = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const rate = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const start = new Map<Mode, number[]>(MODES.map((m) => [m, []]));

  for (let round = 0; round < rounds; round++) {
    for (const mode of MODES) {
      ctx.log(`  ${mode}, round ${round + 1}/${rounds} …`);
      const plainServer = mode === 'plain' ? await startNatsServer() : undefined;
      try {
        const opts = benchOptions(ctx, {
          data: { range: { end: 8_000 } },
          partitions,
          ...(plainServer ? { natsUrl: plainServer.url } : {}),
          ...(mode === 'auth+tls' ? { tls: true } : {}),
        });
        const r = await withCluster(opts, async (cluster) => {
          for (let i = 0; i < warmup; i++) await cluster.request(i % partitions, 'ping'); // warm-up, untimed
          const samples = await sampleAsync((i) => cluster.request(i % partitions, 'ping'), latencyBounds);
          const t0 = performance.now();
          let next = 0;
          await Promise.all(
            Array.from({ length: burst.inFlight }, async () => {
              while (next < burst.total) await cluster.request(next++ % partitions, 'ping');
            }),
          );
          return { samples, perSecond: burst.total / ((performance.now() - t0) / 1000) };
        });
        latency.get(mode)!.push(...r.value.samples);
        rate.get(mode)!.push(r.value.perSecond);
        start.get(mode)!.push(r.startMs);
      } finally {
        await plainServer?.stop();
      }
    }
  }
  for (const mode of MODES) {
    s.rows.push(measure(`${mode}: request latency (driver → partition, NATS)`, 'ms', latency.get(mode)!));
    s.rows.push(measure(`${mode}: requests/s (${burst.inFlight} in flight)`, 'req/s', rate.get(mode)!, { higherIsBetter: true }));
    s.rows.push(measure(`${mode}: start() of ${partitions} partitions`, 'ms', start.get(mode)!));
  }
  const med = (m: Map<Mode, number[]>, mode: Mode): number => summarize(m.get(mode)!).median;
  const pct = (a: number, b: number): number => ((a - b) / b) * 100;
  const authLat = pct(med(latency, 'auth'), med(latency, 'plain'));
  const tlsLat = pct(med(latency, 'auth+tls'), med(latency, 'plain'));
  const startDelta = med(start, 'auth+tls') - med(start, 'plain');
  const authStart = med(start, 'auth') - med(start, 'plain');
  s.targets.push({
    id: 'security.auth-latency',
    target: 'nkey auth + permissions: request latency within 5% of the plain bus',
    measured: `${authLat.toFixed(1)}% (${med(latency, 'auth').toFixed(3)} vs ${med(latency, 'plain').toFixed(3)} ms)`,
    met: authLat < 5,
  });
  s.targets.push({
    id: 'security.tls-latency',
    target: 'auth + TLS: request latency within 20% of the plain bus',
    measured: `${tlsLat.toFixed(1)}% (${med(latency, 'auth+tls').toFixed(3)} ms)`,
    met: tlsLat < 20,
  });
  s.targets.push({
    id: 'security.start',
    target: `start of ${partitions} partitions: security adds < 100 ms`,
    measured: `auth ${authStart.toFixed(0)} ms, auth + TLS ${startDelta.toFixed(0)} ms`,
    met: Math.max(authStart, startDelta) < 100,
  });
  s.notes.push(
    'Plain: an anonymous nats-server given as natsUrl (everyone may publish anything). Auth: the default private server with one nkey user per identity and subject permissions. TLS: the same with tls: true (a per-run ECDSA P-256 CA and certificate).',
  );
  s.notes.push(`Start times are ${rounds} sample(s) per mode on 2 shared cores; the three modes alternate within each round so drift hits all alike.`);
  return s;
}
