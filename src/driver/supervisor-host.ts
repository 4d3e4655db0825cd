import { MalformedMessageError } from '../errors.js';
import { createActor, type Actor } from 'xstate';
import type { Subscription } from '@nats-io/nats-core';
import { memberList, supervisorMachine, type SupervisorInput } from '../actors/supervisor.js';
import type { NatsConnection } from '../transport/bus.js';
import { decodeRegistration, decodeState, encodeMembers, encodeMembersDelta, encodeRegisterAck, encodeShutdown } from '../protocol/messages.js';
import { DeltaPublisher } from '../protocol/membership.js';
import { DEFAULT_HEARTBEAT_MS } from '../worker/worker-env.js';
import { receiveTransitions, type Inspector } from './inspection.js';
import { decode, encode } from '../protocol/codec.js';
import { partitionOf, type Subjects } from '../protocol/subjects.js';
import type { Registration } from '../protocol/types.js';

/** The running supervisor actor of one cluster run. */
export type SupervisorActor = Actor<typeof supervisorMachine>;

/** Maps the host a partition registered (its executor's address) to the one the driver and peers use. */
export type AdvertiseHost = (partition: number, executorHost: string) => string;

/** Tells whether `proof` is what the launcher issued to that attempt (see `RunKey`). */
export interface AttemptProofs {
  verifies(partition: number, attempt: number, proof: string): boolean;
}

/**
 * Runs the supervisor actor on the driver with NATS as its effects: registrations and state
 * reports come in on each partition's own control subject (which only that partition's
 * credentials may publish), membership queries on `ctl.members.get`; membership views and the
 * shutdown broadcast go out. Anything that does not decode, or names no partition of this cluster,
 * is counted and dropped, and leaves nothing behind. A registration must carry the proof its
 * launcher issued to that attempt, once: any other (an attempt no launcher started, a replay) is
 * refused and counted as forged before the supervisor sees it, so it can change no member, epoch
 * or generation. With `inspect`, the supervisor actor and
 * (through their `transition` reports) the partitions' actors are inspected by it.
 */
export function hostSupervisor(
  nc: NatsConnection,
  subjects: Subjects,
  input: SupervisorInput,
  proofs: AttemptProofs,
  advertiseHost?: AdvertiseHost,
  heartbeatMs = DEFAULT_HEARTBEAT_MS,
  inspect?: Inspector,
): { actor: SupervisorActor; close(): void } {
  // Only what changed goes out; a partition that missed a delta asks for the whole view.
  const deltas = new DeltaPublisher();
  const actor = createActor(
    supervisorMachine.provide({
      actions: {
        publishMembers: ({ context }) => {
          const d = deltas.next(context.epoch, memberList(context));
          if (d && !nc.isClosed()) nc.publish(subjects.members, encodeMembersDelta({ ...d, generation: context.generation }));
        },
        broadcastShutdown: () => {
          if (!nc.isClosed()) nc.publish(subjects.shutdown, encodeShutdown());
        },
      },
    }),
    { input, inspect },
  );
  const subs: Subscription[] = [];
  const active = (): boolean => actor.getSnapshot().status === 'active';
  const malformed = (): void => {
    if (active()) actor.send({ type: 'MALFORMED' });
  };
  // Attempts that registered with their proof: a proof opens one registration only. Only proven
  // attempts enter, so this grows with the launchers' attempts, not with what anyone sends.
  const registered = new Set<string>();

  subs.push(
    nc.subscribe(subjects.register('*'), {
      callback: (err, msg) => {
        if (err) return;
        const partition = partitionOf(msg.subject, input.partitions);
        let registration: Registration;
        let proof: string;
        try {
          if (partition === undefined) throw new MalformedMessageError(msg.subject, 'names no partition of this cluster');
          ({ proof, ...registration } = decodeRegistration(msg.subject, msg.data, partition));
        } catch {
          malformed();
          return;
        }
        const key = `${partition}:${registration.attempt}`;
        if (!proofs.verifies(partition, registration.attempt, proof) || registered.has(key)) {
          if (active()) actor.send({ type: 'FORGED' });
          // Nothing of the run for a sender that proved nothing: no membership, no generation.
          msg.respond(
            encodeRegisterAck({
              accepted: false,
              shutdown: false,
              reason: `attempt ${registration.attempt} of partition ${partition} was not started by the launcher (or has registered already)`,
              epoch: 0,
              generation: 0,
              members: [],
            }),
          );
          return;
        }
        registered.add(key);
        if (advertiseHost) {
          // The user's function failing is no malformed message: the attempt hears why it was refused.
          try {
            registration = { ...registration, host: advertiseHost(partition, registration.host) };
          } catch (err) {
            const reason = `option advertiseHost threw for partition ${partition} (executor host ${registration.host}): ${(err as Error)?.message ?? String(err)}`;
            msg.respond(encodeRegisterAck({ accepted: false, shutdown: false, reason, epoch: 0, generation: 0, members: [] }));
            return;
          }
        }
        if (!active()) {
          msg.respond(encodeRegisterAck({ accepted: false, shutdown: true, reason: 'the cluster run is over', epoch: 0, generation: 0, members: [] }));
          return;
        }
        // xstate processes the event synchronously, so the snapshot below already reflects it.
        actor.send({ type: 'REGISTER', registration });
        const snap = actor.getSnapshot();
        const member = snap.context.members[registration.partition];
        const accepted = member?.attempt === registration.attempt;
        msg.respond(
          encodeRegisterAck({
            accepted,
            shutdown: snap.value === 'stopping' || snap.status !== 'active',
            ...(accepted ? {} : { reason: `attempt ${registration.attempt} of partition ${registration.partition} is stale` }),
            epoch: snap.context.epoch,
            generation: snap.context.generation,
            members: memberList(snap.context),
          }),
        );
      },
    }),
    nc.subscribe(subjects.state('*'), {
      callback: (err, msg) => {
        if (err) return;
        const partition = partitionOf(msg.subject, input.partitions);
        try {
          if (partition === undefined) throw new MalformedMessageError(msg.subject, 'names no partition of this cluster');
          const s = decodeState(msg.subject, msg.data);
          if (active()) actor.send({ type: 'STATE', partition, ...s });
        } catch {
          malformed();
        }
      },
    }),
    nc.subscribe(subjects.membersGet, {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        try {
          decode(msg.subject, msg.data, ['members-get']);
        } catch {
          malformed();
          return;
        }
        const ctx = actor.getSnapshot().context;
        msg.respond(encodeMembers({ epoch: ctx.epoch, generation: ctx.generation, members: memberList(ctx) }));
      },
    }),
  );

  // Workers report their actors' transitions only when asked to (the launch plan's `inspect`).
  if (inspect) subs.push(receiveTransitions(nc, subjects, input.partitions, inspect, malformed));
  actor.start();
  // The driver's pulse: partitions that stop hearing it (driver host lost) leave by themselves.
  const beat = encode('heartbeat', {});
  const pulse = setInterval(() => {
    if (!nc.isClosed()) nc.publish(subjects.heartbeat, beat);
  }, heartbeatMs);
  pulse.unref();
  return {
    actor,
    close: () => {
      clearInterval(pulse);
      for (const s of subs) s.unsubscribe();
      actor.stop();
    },
  };
}
