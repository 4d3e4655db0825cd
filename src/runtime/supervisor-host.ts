import { createActor, type Actor } from 'xstate';
import type { Subscription } from '@nats-io/nats-core';
import { memberList, supervisorMachine, type SupervisorInput } from '../actors/supervisor.js';
import type { NatsConnection } from '../transport/bus.js';
import { decode } from '../transport/codec.js';
import { MSG, decodeRegistration, decodeState, encodeMembers, encodeRegisterAck, encodeShutdown } from '../transport/messages.js';
import type { Subjects } from '../transport/subjects.js';

/** The running supervisor actor of one cluster run. */
export type SupervisorActor = Actor<typeof supervisorMachine>;

/**
 * Runs the supervisor actor on the driver with NATS as its effects: registrations, state reports
 * and membership queries come in on the control subjects; membership views and the shutdown
 * broadcast go out. Anything on those subjects that does not decode is counted and dropped.
 */
export function hostSupervisor(
  nc: NatsConnection,
  subjects: Subjects,
  input: SupervisorInput,
  token: string,
): { actor: SupervisorActor; close(): void } {
  const actor = createActor(
    supervisorMachine.provide({
      actions: {
        publishMembers: ({ context }) => {
          if (!nc.isClosed()) nc.publish(subjects.members, encodeMembers(context.epoch, memberList(context)));
        },
        broadcastShutdown: () => {
          if (!nc.isClosed()) nc.publish(subjects.shutdown, encodeShutdown(token));
        },
      },
    }),
    { input },
  );
  const subs: Subscription[] = [];
  const malformed = (): void => {
    if (actor.getSnapshot().status === 'active') actor.send({ type: 'MALFORMED' });
  };

  subs.push(
    nc.subscribe(subjects.register, {
      callback: (err, msg) => {
        if (err) return;
        let registration;
        try {
          registration = decodeRegistration(msg.subject, msg.data);
        } catch {
          malformed();
          return;
        }
        if (actor.getSnapshot().status !== 'active') {
          msg.respond(encodeRegisterAck({ accepted: false, shutdown: true, reason: 'the cluster run is over', epoch: 0, members: [] }));
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
            reason: accepted ? undefined : `attempt ${registration.attempt} of partition ${registration.partition} is stale or out of range`,
            epoch: snap.context.epoch,
            members: memberList(snap.context),
          }),
        );
      },
    }),
    nc.subscribe(subjects.state, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const s = decodeState(msg.subject, msg.data);
          if (actor.getSnapshot().status === 'active') actor.send({ type: 'STATE', ...s });
        } catch {
          malformed();
        }
      },
    }),
    nc.subscribe(subjects.membersGet, {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        const ctx = actor.getSnapshot().context;
        msg.respond(encodeMembers(ctx.epoch, memberList(ctx)));
      },
    }),
    // Traffic on the broadcast subjects that we did not send (or that does not decode) is counted too.
    nc.subscribe(subjects.shutdown, {
      callback: (err, msg) => {
        if (err) return;
        try {
          decode(msg.subject, msg.data, [MSG.shutdown]);
        } catch {
          malformed();
        }
      },
    }),
  );

  actor.start();
  return {
    actor,
    close: () => {
      for (const s of subs) s.unsubscribe();
      actor.stop();
    },
  };
}
