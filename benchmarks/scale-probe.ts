/**
 * Embedded start, scatter/gather and stop as partitions grow, with the library compiled to
 * JavaScript (as published) and a JavaScript server: what one machine does with 8 … 64 partitions.
 * Not run directly: lib/compiled.ts compiles the project and runs the compiled copy of this file
 * with `node scale-probe.js <sizes,csv> <ping samples> [uncounted]`; it prints one `BENCH_JSON {...}`
 * line. With `uncounted`, the largest size also starts once more with workers that count no
 * requests (SPS_REQUEST_STATS=0), under key `<n>-uncounted`: the control bytes that request stats
 * add to a start are the difference.
 *
 * The control traffic of each start is counted by a monitoring subscriber on the run's bus with
 * the driver's own identity (the only one allowed to read every `sps.<id>.ctl.*` subject): the
 * launcher below subscribes before the first worker is spawned, and counts every message
 * published on a control subject until start() resolves (payload bytes; register replies, sent to
 * each partition's inbox, are not seen and are small and constant per partition).
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { Cluster, type LaunchEvents, type LaunchPlan, type Launcher } from '../src/index.js';
import { partitionSource } from '../src/driver/launch/data-source.js';
import { EmbeddedLauncher } from '../src/driver/launch/embedded-launcher.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { sampleAsync } from './lib/timing.js';

/** Messages and payload bytes per control subject kind (`register`, `state`, `members`, …). */
export type ControlTraffic = Record<string, { msgs: number; bytes: number }>;

/** What this probe prints, per partition count. */
export interface ScaleOut {
  startMs: number;
  stopMs: number;
  /** requestAll('ping') round trips, ms. */
  ping: number[];
  /** Control traffic published during start(). */
  control: ControlTraffic;
}

/** The embedded launcher, plus a subscriber that counts the run's control traffic. */
class CountingLauncher implements Launcher {
  readonly kind = 'embedded (counting control traffic)';
  readonly traffic: ControlTraffic = {};
  counting = true;
  private nc?: NatsConnection;

  constructor(private readonly inner: EmbeddedLauncher) {}

  async launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    this.nc = await connectBus(plan.driverBus, `sps-${plan.clusterId}-bench-monitor`);
    const prefix = `${subjectsFor(plan.clusterId).prefix}.ctl.`;
    this.nc.subscribe(`${prefix}>`, {
      callback: (_err, msg) => {
        if (!this.counting) return;
        const kind = msg.subject.slice(prefix.length).split('.')[0]!;
        const t = (this.traffic[kind] ??= { msgs: 0, bytes: 0 });
        t.msgs++;
        t.bytes += msg.data.length;
      },
    });
    await this.nc.flush();
    return this.inner.launch(plan, events);
  }
  async stop(): Promise<void> {
    await this.inner.stop();
    await this.nc?.close();
  }
  pids(): number[] {
    return this.inner.pids();
  }
  killNow(): void {
    this.inner.killNow();
  }
}

const server = new URL('./servers/bench-server.js', import.meta.url);
const sizes = (process.argv[2] ?? '8').split(',').map(Number);
const pings = Number(process.argv[3] ?? '100');
const rows = 10_000;
const uncounted = process.argv[4] === 'uncounted';
const runs: [key: string, n: number, env: Record<string, string>][] = sizes.map((n) => [String(n), n, {}]);
if (uncounted) runs.push([`${Math.max(...sizes)}-uncounted`, Math.max(...sizes), { SPS_REQUEST_STATS: '0' }]);
const out: Record<string, ScaleOut> = {};
for (const [key, n, env] of runs) {
  const launcher = new CountingLauncher(new EmbeddedLauncher(await partitionSource({ range: { end: rows } }, n)));
  const cluster = new Cluster({ server, launcher, partitions: n, env, log: false, startTimeoutMs: 300_000, stopTimeoutMs: 120_000 });
  try {
    const t0 = performance.now();
    await cluster.start();
    const startMs = performance.now() - t0;
    launcher.counting = false;
    const ping = await sampleAsync(
      async () => {
        const replies = await cluster.requestAll('ping');
        for (const [p, r] of replies) if (!r.ok) throw new Error(`ping of partition ${p}: ${r.error.message}`);
      },
      { count: pings, maxMs: 30_000 },
    );
    const t1 = performance.now();
    await cluster.stop();
    const stopMs = performance.now() - t1;
    if (cluster.result().size !== n) throw new Error(`stop() assembled ${cluster.result().size} results, expected ${n}`);
    out[key] = { startMs, stopMs, ping, control: launcher.traffic };
  } finally {
    await cluster.stop().catch(() => {});
  }
}
console.log(`BENCH_JSON ${JSON.stringify(out)}`);
