/**
 * Live updates (issue 21), both sides in one run: how fast a partition applies its updates
 * (its replay after a SIGKILL) against a bare JetStream consumer reading a stream of the same
 * shape, from the same kind of private nats-server, with the same pull size and acknowledgements;
 * how long an update takes from publish to being visible to a read by key; and the catch-up
 * after a SIGKILL (restart and replay of the partition's updates).
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connectBus } from '../src/transport/bus.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer } from '../src/transport/nats-server.js';
import { subjectsFor, type Subjects } from '../src/protocol/subjects.js';
import { updatesFilter, updatesStream } from '../src/protocol/updates.js';
import { createUpdatesStream } from '../src/driver/updates-stream.js';
import { partitionOfKey, type UpdatesStatus } from '../src/index.js';
import { benchOptions, withCluster } from './lib/cluster.js';
import { measure } from './lib/timing.js';
import { section, type BenchContext, type SectionResult } from './lib/types.js';

const SERVER = new URL('./servers/updates-bench-server.ts', import.meta.url);
const SUBJECT = 'bench.*';
const key = (i: number): string => `k${i}`;

/** Publishes `count` updates (`{n: 1}` on key `i % keys`), `window` awaiting their acks at a time. */
async function publishAll(js: JetStreamClient, count: number, keys: number): Promise<void> {
  const window = 512;
  const body = JSON.stringify({ n: 1 });
  for (let start = 0; start < count; start += window) {
    const acks = [];
    for (let i = start; i < Math.min(count, start + window); i++) acks.push(js.publish(`bench.${key(i % keys)}`, body));
    await Promise.all(acks);
  }
}

/** How often the batched bare consumer acknowledges (the partition's own bound on a run). */
const ACK_RUN = 64;
/** Updates a bare consumer asks for at a time: the partition's own pull. */
const PULL = 512;

/**
 * A bare consumer of partition 0's updates in this process, applying each to a map: its rate in
 * updates/s. `acks`: each update acknowledged, or one acknowledgement for a run of them (as the
 * partition does: every ACK_RUN, and the last the stream holds for it).
 */
async function bareRate(nc: NatsConnection, subjects: Subjects, startSeq: number, count: number, acks: 'each' | 'runs'): Promise<number> {
  const name = `bare-${acks}`;
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(updatesStream('barebench'), {
    durable_name: name,
    filter_subject: updatesFilter(subjects, 0),
    ack_policy: acks === 'each' ? AckPolicy.Explicit : AckPolicy.All,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: startSeq,
  });
  const consumer = await jetstream(nc).consumers.get(updatesStream('barebench'), name);
  const view = new Map<string, number>();
  const t0 = performance.now();
  const messages = await consumer.consume({ max_messages: PULL });
  let n = 0;
  for await (const m of messages) {
    const k = m.subject.slice(m.subject.lastIndexOf('.') + 1);
    view.set(k, (view.get(k) ?? 0) + (m.json<{ n: number }>().n ?? 0));
    if (acks === 'each' || n % ACK_RUN === ACK_RUN - 1 || m.info.pending === 0) m.ack();
    if (++n === count) break;
  }
  return count / ((performance.now() - t0) / 1000);
}

export default async function updates(ctx: BenchContext): Promise<SectionResult> {
  const partitions = 4;
  const keys = 1000;
  const total = ctx.quick ? 20_000 : 1_000_000;
  const visibleSamples = ctx.quick ? 50 : 300;
  const s = section('updates', 'Live updates: apply rate vs a bare JetStream consumer, publish → visible, catch-up after a SIGKILL', {
    partitions,
    keys,
    updatesInStream: total,
    subject: SUBJECT,
  });
  const owned = (p: number): number => {
    let n = 0;
    for (let i = 0; i < total; i++) if (partitionOfKey(key(i % keys), partitions) === p) n++;
    return n;
  };
  const mine = owned(0);
  let partitionRate = Number.NaN;

  await withCluster(
    benchOptions(ctx, {
      server: SERVER,
      data: Array.from({ length: keys }, (_, i) => ({ id: key(i), amount: 0 })),
      partitions,
      partitionBy: 'id',
      updates: SUBJECT,
    }),
    async (cluster) => {
      const pub = await connectBus(cluster.credentials('publisher'), 'sps-bench-publisher');
      try {
        const js = jetstream(pub);
        // Publish → visible: the publish acknowledged, then reads by key until the new value shows.
        const expected = new Map<string, number>();
        const visible: number[] = [];
        for (let i = 0; i < visibleSamples; i++) {
          const k = key((i * 7919) % keys);
          const want = (expected.get(k) ?? 0) + 1;
          expected.set(k, want);
          const t0 = performance.now();
          await js.publish(`bench.${k}`, JSON.stringify({ n: 1 }));
          while ((await cluster.requestByKey<number>(k, 'get', { key: k })) !== want);
          visible.push(performance.now() - t0);
        }
        s.rows.push(measure('publish → visible to a read by key (acknowledged publish, then reads until it shows)', 'ms', visible));

        // The stream filled, then partition 0 killed: its new attempt replays every update of its keys.
        await publishAll(js, total, keys);
        const status = async () => cluster.request<UpdatesStatus & { attempt: number }>(0, 'status', {});
        const want0 = mine + [...expected].filter(([k]) => partitionOfKey(k, partitions) === 0).reduce((n, [, v]) => n + v, 0);
        for (;;) {
          const st = await status();
          if (st.applied + st.failed >= want0 && st.pending === 0) break;
        }
        const victim = cluster.members[0]!;
        const t0 = performance.now();
        process.kill(victim.pid, 'SIGKILL');
        // The new attempt serves while it replays; wait until it says it caught up.
        await new Promise<void>((resolve) =>
          cluster.on('member', function serving(e) {
            if (e.partition === 0 && e.kind === 'serving' && e.attempt > victim.attempt) {
              cluster.off('member', serving);
              resolve();
            }
          }),
        );
        const servingMs = performance.now() - t0;
        // Asked four times a second: a tight loop of requests would take the worker's CPU from its replay.
        let st = await status();
        while (!st.caughtUp) {
          await new Promise((r) => setTimeout(r, 250));
          st = await status();
        }
        const replay = st.caughtUp;
        if (replay.updates < want0) throw new Error(`partition 0 caught up after ${replay.updates} updates, expected ${want0}`);
        partitionRate = replay.updates / (replay.ms / 1000);
        s.rows.push(measure('after a SIGKILL: kill → the new attempt serves', 'ms', [servingMs]));
        s.rows.push(
          measure('after a SIGKILL: the new attempt replays its partition’s updates', 'ms', [replay.ms], {
            note: `${replay.updates} updates; it serves meanwhile`,
          }),
        );
        s.rows.push(
          measure('partition replay rate (onUpdate, in order, acknowledged)', 'updates/s', [partitionRate], {
            higherIsBetter: true,
          }),
        );
      } finally {
        await pub.close();
      }
    },
  );

  // The other side: a bare consumer in this process, same stream shape and pull, on a server of its own.
  const nats = await startNatsServer({ jetstream: { maxFileBytes: 8 * 1024 ** 3, maxMemoryBytes: 64 * 1024 ** 2 } });
  try {
    const nc = await connect({ servers: nats.url });
    try {
      const subjects = subjectsFor('barebench');
      const plan = await createUpdatesStream(nc, 'barebench', subjects, SUBJECT, partitions);
      await publishAll(jetstream(nc), total, keys);
      // Both ways a consumer can acknowledge: each update, or a run of them at once (as a partition does).
      const eachRate = await bareRate(nc, subjects, plan.startSeq, mine, 'each');
      const runRate = await bareRate(nc, subjects, plan.startSeq, mine, 'runs');
      s.rows.push(measure(`bare JetStream consumer rate (same stream shape, pull ${PULL}, ack each)`, 'updates/s', [eachRate], { higherIsBetter: true }));
      s.rows.push(
        measure(`bare JetStream consumer rate (same stream shape, pull ${PULL}, ack all every ${ACK_RUN} and the last)`, 'updates/s', [runRate], {
          higherIsBetter: true,
        }),
      );
      s.notes.push(`partition replay rate / bare consumer acknowledging each: ${((partitionRate / eachRate) * 100).toFixed(0)}%`);
      // The target against the consumer that acknowledges as the partition does: what the library itself costs.
      const bare = runRate;
      const ratio = partitionRate / bare;
      s.notes.push(`partition replay rate / bare consumer acknowledging runs: ${(ratio * 100).toFixed(0)}%`);
      s.targets.push({
        id: 'updates-rate',
        target: 'updates applied per second per partition ≥ 80% of a bare JetStream consumer (acknowledging the same way)',
        measured: `${Math.round(partitionRate)} vs ${Math.round(bare)} updates/s (${(ratio * 100).toFixed(0)}%)`,
        met: Number.isFinite(ratio) ? ratio >= 0.8 : null,
      });
    } finally {
      await nc.close();
    }
  } finally {
    await nats.stop();
  }
  const vis = s.rows.find((r) => r.name.startsWith('publish → visible'));
  if (vis) {
    s.targets.push({
      id: 'updates-visible',
      target: 'publish → visible to a read by key: p50 < 5 ms, p99 < 25 ms',
      measured: `${vis.median.toFixed(2)} / ${vis.p99.toFixed(2)} ms`,
      met: vis.median < 5 && vis.p99 < 25,
    });
  }
  return s;
}
