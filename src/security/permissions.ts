/**
 * Least privilege by subject. The NATS server checks subjects, not bodies, so each identity of a
 * run gets exactly the subjects its role needs; everything else is refused by the server before
 * any process of ours sees it.
 *
 * | identity      | may publish                                                     | may subscribe                                  |
 * |---------------|-----------------------------------------------------------------|------------------------------------------------|
 * | driver        | anything under `sps.<id>.`                                      | anything under `sps.<id>.`, its inbox          |
 * | partition p   | `ctl.register.p`, `ctl.state.p`, `ctl.stats.p`, `ctl.inspect.p`, `ctl.members.get`, peers' endpoints, `coll.*.p`, `app.>`, replies | its own endpoints (with and without the attempt), `ctl.members`, `ctl.shutdown`, `coll.p.*`, `coll.all.*`, `app.>`, the run's `$SRV` subjects, its inbox |
 * | Spark runner  | `spark.*` job events (not `cancel`), replies                    | `spark.cancel`, its inbox                      |
 * | client        | endpoints (with and without the attempt, and key-routed), `ctl.members.get`, the run's `$SRV` subjects | `ctl.members`, its inbox |
 * | publisher     | the run's updates subject (e.g. `orders.*`) only                | its inbox (the stream's acknowledgements)      |
 *
 * With events (option `events`), partition p may also publish `evt.p.>` (through JetStream: `ctx.publish`)
 * and a client may read the events stream with consumers of its own.
 * With live updates (option `updates`), the driver may also make, read and delete the run's stream (and read its dead letters),
 * and partition p may make, read, pull from and delete only its own consumer `p<p>` — whose filter
 * the server checks against the create subject, so it is p's partition of the stream and no other —
 * acknowledge its messages and send to its own dead-letter subject.
 *
 * The run's `$SRV` subjects are the NATS micro discovery requests for all services and for the
 * run's service (named as the cluster id), nothing of other services; replies go out under `allow_responses`.
 */
import { serviceSubjects, subjectsFor } from '../protocol/subjects.js';
import { deadLetterSubject, eventsStream, eventsSubject, updatesConsumer, updatesFilter, updatesStream } from '../protocol/updates.js';

/** What one user of the private nats-server may do. */
export interface Permissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[]; deny?: string[] };
  /** May publish to the reply subject of a request it received (and only once, only then). */
  allow_responses?: boolean;
}

/** The roles of a cluster run's bus. */
export type Role = { kind: 'driver' } | { kind: 'partition'; partition: number } | { kind: 'runner' } | { kind: 'client' } | { kind: 'publisher' };

/** What the permissions of a run with JetStream streams add: live updates (option `updates`), events (option `events`). */
export interface StreamsAccess {
  /** The updates subject, e.g. `orders.*`. */
  updates?: string;
  /** Partitions publish events with `ctx.publish`, clients read them. */
  events?: boolean;
}

/** The inbox identity token of a role (`driver`, `p3`, `runner`, `client`). */
export function identityOf(role: Role): string {
  return role.kind === 'partition' ? `p${role.partition}` : role.kind;
}

/** The permissions of `role` on the bus of cluster run `clusterId` (with live updates when `updates` is given). */
export function permissionsFor(clusterId: string, role: Role, streams: StreamsAccess = {}): Permissions {
  const s = subjectsFor(clusterId);
  const inbox = `${s.inbox(identityOf(role))}.>`;
  const stream = updatesStream(clusterId);
  const events = eventsStream(clusterId);
  const api = '$JS.API';
  const { updates } = streams;
  switch (role.kind) {
    case 'driver': {
      const made = [...(updates ? [stream] : []), ...(streams.events ? [events] : [])];
      const streamApi = made.flatMap((name) => ['CREATE', 'INFO', 'DELETE'].map((op) => `${api}.STREAM.${op}.${name}`));
      const consumerInfo = updates ? [`${api}.CONSUMER.INFO.${stream}.*`, `${api}.STREAM.MSG.GET.${stream}`] : [];
      if (made.length > 0) consumerInfo.push(`${api}.INFO`);
      return { publish: { allow: [`${s.prefix}.>`, ...streamApi, ...consumerInfo] }, subscribe: { allow: [`${s.prefix}.>`, inbox] }, allow_responses: true };
    }
    case 'partition':
      return {
        // Collectives: p speaks only as itself (`coll.*.p`) and hears only what is addressed to it or to all.
        publish: {
          allow: [
            s.register(role.partition),
            s.state(role.partition),
            s.stats(role.partition),
            s.inspect(role.partition),
            s.membersGet,
            `${s.prefix}.p.*.*.*`,
            s.coll('*', role.partition),
            s.app,
            ...(updates ? partitionUpdates(clusterId, role.partition) : []),
            // Events: p publishes only under its own number, so a reader knows who sent each.
            ...(streams.events ? [eventsSubject(s, role.partition)] : []),
          ],
        },
        subscribe: {
          allow: [
            s.endpoints(role.partition, '*'),
            s.stable(role.partition, '*'),
            s.members,
            s.shutdown,
            s.heartbeat,
            s.coll(role.partition, '*'),
            s.coll('all', '*'),
            s.app,
            ...serviceSubjects(s.service),
            inbox,
          ],
        },
        allow_responses: true,
      };
    case 'runner':
      return {
        publish: { allow: [s.spark('*')], deny: [s.spark('cancel')] },
        subscribe: { allow: [s.spark('cancel'), inbox] },
        allow_responses: true,
      };
    case 'client':
      return {
        publish: {
          allow: [
            `${s.prefix}.p.*.*.*`,
            s.stable('*', '*'),
            s.key('*', '*'),
            s.membersGet,
            ...serviceSubjects(s.service),
            ...(streams.events ? readEvents(events) : []),
          ],
        },
        subscribe: { allow: [s.members, inbox] },
      };
    case 'publisher':
      return { publish: { allow: updates ? [updates] : [] }, subscribe: { allow: [inbox] } };
  }
}

/** What partition p may do with the updates stream: its own consumer only, and its dead letters. */
function partitionUpdates(clusterId: string, partition: number): string[] {
  const s = subjectsFor(clusterId);
  const stream = updatesStream(clusterId);
  const consumer = updatesConsumer(partition);
  return [
    // The create subject carries the filter; the server refuses a body whose filter differs.
    `$JS.API.CONSUMER.CREATE.${stream}.${consumer}.${updatesFilter(s, partition)}`,
    ...['INFO', 'DELETE', 'MSG.NEXT'].map((op) => `$JS.API.CONSUMER.${op}.${stream}.${consumer}`),
    `$JS.ACK.${stream}.${consumer}.>`,
    deadLetterSubject(s, partition),
  ];
}

/** What a client may do with the events stream: read it with consumers of its own (e.g. ordered ones), nothing else. */
function readEvents(stream: string): string[] {
  const api = '$JS.API';
  return [
    `${api}.INFO`,
    `${api}.STREAM.INFO.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}.>`,
    ...['INFO', 'DELETE', 'MSG.NEXT'].map((op) => `${api}.CONSUMER.${op}.${stream}.*`),
    `$JS.ACK.${stream}.>`,
  ];
}

/** Permissions on a Spark application's own bus (`sps.<appId>.spark.*`): the driver orders, the runner answers. */
export function applicationPermissions(appId: string, role: 'driver' | 'runner'): Permissions {
  const s = subjectsFor(appId);
  const inbox = `${s.inbox(role)}.>`;
  const orders = ['submit', 'dataset', 'sql', 'status', 'close'].map((op) => s.spark(op));
  return role === 'driver'
    ? { publish: { allow: orders }, subscribe: { allow: [s.spark('ready'), inbox] } }
    : { publish: { allow: [s.spark('ready')] }, subscribe: { allow: [...orders, inbox] }, allow_responses: true };
}
