/**
 * Benchmark — a NATS cluster as the bus: a 3-node nats-server cluster (routes on loopback) given as
 * `natsUrl`, 4 partitions under request load; the node at the head of the URL list is SIGKILLed,
 * then the next one: SIGKILL → every partition answering again, requests failed meanwhile, and
 * results at stop. Both credential kinds in one run: one shared token, and the run's own
 * identities issued in an account (`natsAccount`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterOptions } from '../src/index.js';
import { makeNatsAccountSetup } from '../src/security/nats-accounts.js';
import { startNatsCluster } from '../test/helpers/nats-cluster.js';
import { benchOptions } from './lib/cluster.js';
import { measure, now } from './lib/timing.js';
import { isSmoke, section, type BenchContext, type SectionResult } from './lib/types.js';
import { when } from './recovery.js';

const PARTITIONS = 4;

/** Nodes killed one after the other per bus (a smoke run checks the path with one). */
const kills = (): number => (isSmoke() ? 1 : 2);

/** One cluster bus with one kind of credentials: the failover figures of its node losses. */
async function nodeLoss(
  ctx: BenchContext,
  kind: string,
  prepare: () => Promise<{
    include?: Record<string, unknown>;
    token?: string;
    options: Pick<ClusterOptions, 'natsAuth' | 'natsAccount'>;
    cleanup(): Promise<void>;
  }>,
): Promise<{ kind: string; back: number[]; ok: number; failed: number; results: number }> {
  const p = await prepare();
  const nats = await startNatsCluster(3, { ...(p.include ? { include: p.include } : {}), ...(p.token ? { token: p.token } : {}) });
  const cluster = new Cluster(
    benchOptions(ctx, { data: { range: { end: 4000 } }, partitions: PARTITIONS, natsUrl: nats.url, reconnectWindowMs: 60_000, ...p.options }),
  );
  let running = true;
  let ok = 0;
  let failed = 0;
  try {
    await cluster.start();
    const lanes = Promise.all(
      [0, 1, 2, 3].map(async (lane) => {
        for (let i = lane; running; i += 4) {
          await cluster.request(i % PARTITIONS, 'ping', undefined, { timeoutMs: 2000 }).then(
            () => ok++,
            () => failed++,
          );
        }
      }),
    );
    const back: number[] = [];
    for (const node of nats.nodes.slice(0, kills())) {
      // Load is flowing before each kill (answered requests counted since the last failover).
      const before = ok;
      await when(() => ok >= before + 50, 60_000, 'requests answered under load');
      const t0 = now();
      process.kill(node.pid, 'SIGKILL');
      const t1 = await when(
        async () => [...(await cluster.requestAll('ping', undefined, { timeoutMs: 250 })).values()].every((r) => r.ok),
        60_000,
        'every partition answering again',
      );
      back.push(t1 - t0);
    }
    running = false;
    await lanes;
    await cluster.stop();
    return { kind, back, ok, failed, results: cluster.result().size };
  } finally {
    running = false;
    await cluster.stop().catch(() => {});
    await nats.stop();
    await p.cleanup();
  }
}

export default async function natsCluster(ctx: BenchContext): Promise<SectionResult> {
  const s = section('nats-cluster', 'NATS cluster as the bus: node loss', { nodes: 3, partitions: PARTITIONS, requestLanes: 4, kills: kills() });
  const token = 'bench-token';
  const runs = [
    await nodeLoss(ctx, 'one shared token', async () => ({ token, options: { natsAuth: { token } }, cleanup: async () => {} })),
    await nodeLoss(ctx, 'natsAccount identities', async () => {
      const setup = await makeNatsAccountSetup();
      const dir = await mkdtemp(join(tmpdir(), 'sps-bench-account-'));
      const signingKeyFile = join(dir, 'signing-key.nk');
      await writeFile(signingKeyFile, setup.signingKeySeed, { mode: 0o600 });
      return {
        include: setup.serverConfig,
        options: { natsAccount: { account: setup.account, signingKeyFile } },
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    }),
  ];
  for (const r of runs) {
    s.rows.push(measure(`node SIGKILLed → every partition answering, ${r.kind}`, 'ms', r.back));
    s.notes.push(
      `${r.kind}: ${r.ok} requests answered under load, ${r.failed} failed (timed out or no responder) during the failovers; ${r.results} of ${PARTITIONS} results at stop.`,
    );
  }
  const worst = Math.max(...runs.flatMap((r) => r.back));
  const lost = runs.reduce((n, r) => n + PARTITIONS - r.results, 0);
  s.targets.push({
    id: 'recovery.nats-cluster-node-loss',
    target: 'NATS cluster node loss → every partition answering again in < 2 s, 0 results lost',
    measured: `${worst.toFixed(0)} ms max; ${lost} results lost`,
    met: worst < 2000 && lost === 0,
  });
  return s;
}
