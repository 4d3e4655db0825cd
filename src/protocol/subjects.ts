import { InvalidOptionError } from '../errors.js';

/**
 * The NATS subject scheme. Every subject of one cluster run lives under `sps.<clusterId>.`, so
 * several clusters (or several runs of one) can share a NATS server without seeing each other.
 *
 * | subject                                   | who publishes        | kind            |
 * |-------------------------------------------|----------------------|-----------------|
 * | `sps.<id>.ctl.register.<partition>`       | that partition       | request/reply   |
 * | `sps.<id>.ctl.state.<partition>`          | that partition       | publish         |
 * | `sps.<id>.ctl.stats.<partition>`          | that partition       | publish (request counters) |
 * | `sps.<id>.ctl.inspect.<partition>`        | that partition       | publish (only when the driver inspects) |
 * | `sps.<id>.ctl.shutdown`                   | the driver           | broadcast       |
 * | `sps.<id>.ctl.heartbeat`                  | the driver           | broadcast       |
 * | `sps.<id>.ctl.members`                    | the driver           | broadcast       |
 * | `sps.<id>.ctl.members.get`                | partitions, clients  | request/reply   |
 * | `sps.<id>.p.<partition>.<attempt>.<name>` | driver, peers, clients | request/reply |
 * | `sps.<id>.p.<partition>.<name>`           | clients (stable: the current attempt answers) | request/reply |
 * | `sps.<id>.key.<name>.<key>`               | clients (the server maps it to the key's partition's stable subject) | request/reply, publish |
 * | `$SRV.PING/INFO/STATS[.<service>[.<id>]]` | anyone allowed (NATS micro discovery) | request/reply |
 * | `sps.<id>.coll.<to>.<from>`               | partition `<from>`   | publish (collectives; `<to>` a partition or `all`) |
 * | `sps.<id>.spark.<event>`                  | the Spark runner (`cancel`: the driver) | publish / request |
 * | `sps.<id>.app.>`                          | the user's code      | anything        |
 * | `_INBOX.<id>.<identity>.>`                | replies to one identity | reply        |
 *
 * The partition is a subject token, not a message field, because the NATS server checks subjects
 * against each user's permissions: partition p's credentials can only publish p's control
 * subjects, so no message can claim to come from another partition. Endpoints carry the attempt so
 * that a stale attempt (a process Spark has already replaced) can never answer for its partition.
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** True when `s` can be used as one token of a subject (cluster ids, endpoint names). */
export function isSubjectToken(s: string): boolean {
  return TOKEN.test(s);
}

/** Subjects of one cluster run. */
export interface Subjects {
  /** `sps.<clusterId>`: every subject of the run starts with it. */
  readonly prefix: string;
  /** `register` of one partition, or (`'*'`) the wildcard the supervisor listens on. */
  register(partition: number | '*'): string;
  /** `state` of one partition, or (`'*'`) the wildcard the supervisor listens on. */
  state(partition: number | '*'): string;
  /** `stats` (request counters) of one partition, or (`'*'`) the wildcard the driver listens on. */
  stats(partition: number | '*'): string;
  /** `transition` reports of one partition's server actor, or (`'*'`) the wildcard the driver's inspection listens on. */
  inspect(partition: number | '*'): string;
  /** The driver's broadcast telling every partition to drain. */
  readonly shutdown: string;
  /** The driver's heartbeat to every partition. */
  readonly heartbeat: string;
  /** The driver's broadcast of membership changes (`members-delta`). */
  readonly members: string;
  /** Request/reply: asks the supervisor for the whole membership view (`members`). */
  readonly membersGet: string;
  /** The subject of one endpoint of one attempt of one partition. */
  endpoint(partition: number, attempt: number, name: string): string;
  /** Wildcard matching every endpoint of one attempt of one partition. */
  endpoints(partition: number, attempt: number | '*'): string;
  /**
   * The stable subject of one endpoint of one partition, without the attempt: the partition's
   * current attempt answers it (see README, "Wire protocol"). `'*'` for every partition or name.
   */
  stable(partition: number | '*', name: string | '*'): string;
  /** The NATS micro service name every partition of this run registers under: the cluster id. */
  readonly service: string;
  /**
   * The key-routed subject of endpoint `name` for the key token `key` (`'*'` for any): the private
   * nats-server maps it to the stable subject of the key's partition (see `keyMapping` in `src/protocol/subjects.ts`).
   */
  key(name: string | '*', key: string | '*'): string;
  /**
   * Collective traffic from partition `from` to partition `to` (or `all` of them). Only `from`'s
   * credentials may publish it, so the sender is the subject's last token, never a field.
   */
  coll(to: number | 'all' | '*', from: number | '*'): string;
  /** The Spark runner's subjects. */
  spark(event: string): string;
  /** Subjects left to the user's code (`sps.<id>.app.>`). */
  readonly app: string;
  /** Inbox prefix of one identity (`driver`, `p3`, `runner`, `client`). */
  inbox(identity: string): string;
}

/** Builds the subjects of the cluster run `clusterId`. */
export function subjectsFor(clusterId: string): Subjects {
  if (!isSubjectToken(clusterId)) {
    throw new InvalidOptionError('clusterId', `"${clusterId}" must match ${TOKEN}`);
  }
  const prefix = `sps.${clusterId}`;
  return {
    prefix,
    register: (p) => `${prefix}.ctl.register.${p}`,
    state: (p) => `${prefix}.ctl.state.${p}`,
    stats: (p) => `${prefix}.ctl.stats.${p}`,
    inspect: (p) => `${prefix}.ctl.inspect.${p}`,
    shutdown: `${prefix}.ctl.shutdown`,
    heartbeat: `${prefix}.ctl.heartbeat`,
    members: `${prefix}.ctl.members`,
    membersGet: `${prefix}.ctl.members.get`,
    endpoint: (partition, attempt, name) => `${prefix}.p.${partition}.${attempt}.${name}`,
    endpoints: (partition, attempt) => `${prefix}.p.${partition}.${attempt}.*`,
    stable: (partition, name) => `${prefix}.p.${partition}.${name}`,
    // The cluster id is a valid service name as it is (letters, digits, `_`, `-`); default ids start with `sps-`.
    service: clusterId,
    key: (name, key) => `${prefix}.key.${name}.${key}`,
    coll: (to, from) => `${prefix}.coll.${to}.${from}`,
    spark: (event) => `${prefix}.spark.${event}`,
    app: `${prefix}.app.>`,
    inbox: (identity) => `_INBOX.${clusterId}.${identity}`,
  };
}

/** The verbs of the NATS micro discovery protocol. */
const SERVICE_VERBS = ['PING', 'INFO', 'STATS'] as const;

/**
 * The `$SRV` subjects that reach the service `name`: each verb for all services, for services of
 * that name, and for one instance of it (its id is random, hence the wildcard).
 */
export function serviceSubjects(name: string): string[] {
  return SERVICE_VERBS.flatMap((verb) => [`$SRV.${verb}`, `$SRV.${verb}.${name}`, `$SRV.${verb}.${name}.*`]);
}

/**
 * The partition named by the last token of a `register`/`state`/`inspect` subject, or `undefined` when it
 * is not a partition of a cluster of `partitions`.
 */
export function partitionOf(subject: string, partitions: number): number | undefined {
  const token = subject.slice(subject.lastIndexOf('.') + 1);
  if (!/^(0|[1-9]\d{0,5})$/.test(token)) return undefined;
  const p = Number(token);
  return p < partitions ? p : undefined;
}

/**
 * The nats-server subject mapping that routes `sps.<id>.key.<name>.<key>` to the stable subject of
 * the partition owning `<key>`, `sps.<id>.p.<partition>.<name>`: nats-server's `partition(n, 2)`
 * transform, the same function as `partitionOfKey` (src/protocol/key-partition.ts).
 */
export function keyMapping(subjects: Subjects, partitions: number): Record<string, string> {
  return { [subjects.key('*', '*')]: `${subjects.prefix}.p.{{partition(${partitions},2)}}.{{wildcard(1)}}` };
}
