/**
 * Inspection: one xstate inspector sees the driver's supervisor and every partition's server actor
 * (its transitions reported by the worker over the bus), in order, for a start and a stop; without
 * an inspector the workers report nothing.
 */
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import type { InspectionEvent } from 'xstate';
import { sharedNats, TEST_SERVER } from './helpers/harness.js';
import { withCluster, testCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

/** A state value as one string: `serving`, or `initializing.loading`. */
function valueText(v: unknown): string {
  return typeof v === 'string' ? v : Object.entries(v as Record<string, unknown>).map(([k, sub]) => `${k}.${valueText(sub)}`)[0]!;
}

/** The distinct states an actor went through, in order (a snapshot that did not change state is one step). */
function steps(events: InspectionEvent[], sessionId: string): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type !== '@xstate.snapshot' || e.actorRef.sessionId !== sessionId) continue;
    const v = valueText((e.snapshot as unknown as { value: unknown }).value);
    if (out.at(-1) !== v) out.push(v);
  }
  return out;
}

test.serial('one inspector sees the supervisor and every partition’s server actor, in order, for a start and a stop', async (t) => {
  const server = await nats.get();
  const events: InspectionEvent[] = [];
  await withCluster(
    t,
    { server: TEST_SERVER, data: [1, 2, 3, 4], partitions: 2, natsUrl: server.url, inspect: (e) => events.push(e), log: false },
    async (cluster) => {
      await cluster.stop();

      // The supervisor: the driver's own root actor.
      const supervisor = events.find((e) => e.type === '@xstate.actor' && e.actorRef.sessionId === e.rootId && !e.actorRef.sessionId.startsWith('sps.'));
      t.truthy(supervisor, 'the supervisor actor is announced');
      const sup = steps(events, supervisor!.actorRef.sessionId);
      t.is(sup[0], 'starting.launching');
      t.true(sup.indexOf('running') > 0, sup.join(' → '));
      t.true(sup.indexOf('stopping') > sup.indexOf('running'), sup.join(' → '));
      t.is(sup.at(-1), 'stopped');

      for (const p of [0, 1]) {
        const sessionId = `sps.${cluster.id}:p${p}:a0`;
        const announced = events.findIndex((e) => e.type === '@xstate.actor' && e.actorRef.sessionId === sessionId);
        const firstSnapshot = events.findIndex((e) => e.type === '@xstate.snapshot' && e.actorRef.sessionId === sessionId);
        t.true(announced >= 0 && announced < firstSnapshot, `partition ${p} is announced before its first snapshot`);
        t.deepEqual(steps(events, sessionId), [
          'initializing.loading',
          'initializing.listening',
          'initializing.registering',
          'registered',
          'serving',
          'draining',
          'finished',
        ]);
        const last = events.filter((e) => e.type === '@xstate.snapshot' && e.actorRef.sessionId === sessionId).at(-1)!;
        t.like((last as { snapshot: unknown }).snapshot, { status: 'done', value: 'finished', context: { partition: p, attempt: 0 } });
        t.is((last as { event: { type: string } }).event.type.startsWith('xstate.done.actor'), true);
        t.is(last.actorRef.getSnapshot(), (last as { snapshot: unknown }).snapshot);
      }
      t.is(cluster.stats.malformed, 0);
    },
  );
});

test.serial('without an inspector the workers report no transitions', async (t) => {
  const server = await nats.get();
  const spy = await connect({ servers: server.url });
  t.teardown(() => spy.close());
  let heard = 0;
  spy.subscribe('sps.*.ctl.inspect.*', { callback: () => void heard++ });
  const cluster = testCluster(t, { server: TEST_SERVER, data: [1, 2], partitions: 2, natsUrl: server.url, log: false });
  let states = 0;
  spy.subscribe('sps.*.ctl.state.*', { callback: () => void states++ });
  await spy.flush();
  await cluster.start();
  await cluster.stop();
  await spy.flush();
  t.true(states >= 2 * 5, 'the spy does hear the workers’ state reports');
  t.is(heard, 0);
});
