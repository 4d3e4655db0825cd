/**
 * Keyed requests (issue 21): a lookup by key in 8 partitions whose rows were placed by key
 * (`partitionBy`), asked four ways in one run on the same cluster: `requestByKey` (the owner
 * computed on the driver, one hop), the key-routed subject (the server maps it to the owner; a
 * plain NATS client), a request to a partition the caller already knows, and scatter/gather
 * (`requestAll` to every partition, keep the one hit) as one must without keyed placement.
 */
import { connectBus } from '../src/transport/bus.js';
import { decodeReply, encodeRequest } from '../src/protocol/messages.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { measure, sampleAsync } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';

export default async function keyed(ctx: BenchContext): Promise<SectionResult> {
  const rows = ctx.quick ? 20_000 : 200_000;
  const partitions = 8;
  const reps = ctx.quick ? 50 : 1000;
  const bounds = { count: reps, maxMs: ctx.quick ? 3000 : 15_000 };
  const s = section('keyed', 'Keyed requests: requestByKey vs scatter/gather vs a known partition', {
    rows,
    partitions,
    samplesPerWay: reps,
    placement: 'partitionBy: (id) => id (embedded launcher)',
  });
  const key = (i: number): number => (i * 104729) % rows;
  const add = (name: string, samples: number[], note?: string) => s.rows.push(measure(name, 'ms', samples, note ? { note } : {}));
  const check = (k: number, got: unknown): void => {
    if ((got as { id?: number } | null)?.id !== k) throw new Error(`lookup of ${k} gave ${JSON.stringify(got)}`);
  };

  await withCluster(
    benchOptions(ctx, { data: { range: { end: rows } }, partitions, partitionBy: (id) => id as number, config: { store: 'columns' } }),
    async (cluster) => {
      const s2 = subjectsFor(cluster.id!);
      const nc = await connectBus(cluster.credentials('client'), 'sps-bench-keyed');
      try {
        // The owners, known in advance: what a caller that kept them would ask.
        const owners = Array.from({ length: reps }, (_, i) => cluster.partitionOf(key(i)));
        const ways: [string, (i: number) => Promise<void>, string?][] = [
          [
            'requestByKey lookup (owner computed by the caller, 1 hop)',
            async (i) => check(key(i), await cluster.requestByKey(key(i), 'lookup', { key: key(i) })),
          ],
          [
            'key-routed subject lookup (server maps to the owner; plain NATS client)',
            async (i) => {
              const m = await nc.request(s2.key('lookup', String(key(i))), encodeRequest({ key: key(i) }), { timeout: 5000 });
              const reply = decodeReply('lookup', m.data);
              check(key(i), reply.ok ? reply.body : undefined);
            },
            'the client computes nothing; the owner answers on its stable subject',
          ],
          [
            'request to a known partition (owner given)',
            async (i) => check(key(i), await cluster.request(owners[i % reps]!, 'lookup', { key: key(i) })),
            'floor: the same hop without computing the owner',
          ],
          [
            `scatter/gather lookup, ${partitions} partitions (requestAll, keep the hit)`,
            async (i) => {
              const replies = await cluster.requestAll('lookup', { key: key(i) });
              check(
                key(i),
                [...replies.values()].map((r) => (r.ok ? r.value : null)).find((v) => v),
              );
            },
            'what a lookup costs when the owner is unknown',
          ],
        ];
        // One untimed pass of every way first: the first way timed would otherwise pay alone for
        // the JIT and the partitions' first requests.
        for (const [, fn] of ways) await sampleAsync(fn, { count: Math.min(reps, 200), maxMs: 5000 });
        // Then the ways interleaved, one sample of each per round in an order shuffled each round,
        // so a stretch of load on the machine falls on every way alike, and no way always comes
        // right after the scatter/gather (whose eight replies the driver and partitions are still
        // finishing with).
        const samples = ways.map((): number[] => []);
        const deadline = performance.now() + bounds.maxMs * ways.length;
        let seed = 1;
        const random = (): number => (seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647;
        for (let i = 0; i < reps && performance.now() < deadline; i++) {
          const order = ways.map((_, w) => w);
          for (let j = order.length - 1; j > 0; j--) {
            const k = Math.floor(random() * (j + 1));
            [order[j], order[k]] = [order[k]!, order[j]!];
          }
          for (const w of order) {
            const t0 = performance.now();
            await ways[w]![1](i);
            samples[w]!.push(performance.now() - t0);
          }
        }
        ways.forEach(([name, , note], w) => add(name, samples[w]!, note));
      } finally {
        await nc.close();
      }
    },
  );
  const med = (prefix: string) => s.rows.find((r) => r.name.startsWith(prefix))?.median ?? Number.NaN;
  const byKey = med('requestByKey');
  const known = med('request to a known partition');
  const ratio = med('scatter/gather') / byKey;
  if (Number.isFinite(ratio)) s.notes.push(`scatter/gather median / requestByKey median: ${ratio.toFixed(1)}x`);
  s.targets.push(
    {
      id: 'keyed-vs-scatter',
      target: `lookup by key: requestByKey ≥ 3× faster than scatter/gather over ${partitions} partitions (medians)`,
      measured: `${ratio.toFixed(1)}×`,
      met: Number.isFinite(ratio) ? ratio >= 3 : null,
    },
    {
      id: 'keyed-vs-known',
      target: 'lookup by key: requestByKey within 10% of a request to a known partition (medians)',
      measured: `${byKey.toFixed(3)} vs ${known.toFixed(3)} ms (${(((byKey - known) / known) * 100).toFixed(0)}%)`,
      met: Number.isFinite(byKey / known) ? byKey <= known * 1.1 : null,
    },
  );
  return s;
}
