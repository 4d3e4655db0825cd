/**
 * The NATS subject scheme. Every subject of one cluster run lives under `sps.<clusterId>.`, so
 * several clusters (or several runs of one) can share a NATS server without seeing each other.
 *
 * | subject                                   | direction            | kind            |
 * |-------------------------------------------|----------------------|-----------------|
 * | `sps.<id>.ctl.register`                   | worker → supervisor  | request/reply   |
 * | `sps.<id>.ctl.state`                      | worker → supervisor  | publish         |
 * | `sps.<id>.ctl.shutdown`                   | supervisor → workers | broadcast       |
 * | `sps.<id>.ctl.members`                    | supervisor → workers | broadcast       |
 * | `sps.<id>.ctl.members.get`                | anyone → supervisor  | request/reply   |
 * | `sps.<id>.p.<partition>.<attempt>.<name>` | anyone → one worker  | request/reply   |
 * | `sps.<id>.spark.<event>`                  | Spark runner ↔ driver| publish/request |
 *
 * Endpoints are addressed with the attempt in the subject so that a stale attempt (a process Spark
 * has already replaced) can never answer for its partition.
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** True when `s` can be used as one token of a subject (cluster ids, endpoint names). */
export function isSubjectToken(s: string): boolean {
  return TOKEN.test(s);
}

/** Subjects of one cluster run. */
export interface Subjects {
  readonly prefix: string;
  readonly register: string;
  readonly state: string;
  readonly shutdown: string;
  readonly members: string;
  readonly membersGet: string;
  /** Wildcard matching every control subject (for counting malformed traffic). */
  readonly control: string;
  /** The subject of one endpoint of one attempt of one partition. */
  endpoint(partition: number, attempt: number, name: string): string;
  /** Wildcard matching every endpoint of one attempt of one partition. */
  endpoints(partition: number, attempt: number): string;
  /** The Spark runner's subjects. */
  spark(event: string): string;
}

/** Builds the subjects of the cluster run `clusterId`. */
export function subjectsFor(clusterId: string): Subjects {
  if (!isSubjectToken(clusterId)) {
    throw new Error(`cluster id "${clusterId}" must match ${TOKEN}`);
  }
  const prefix = `sps.${clusterId}`;
  return {
    prefix,
    register: `${prefix}.ctl.register`,
    state: `${prefix}.ctl.state`,
    shutdown: `${prefix}.ctl.shutdown`,
    members: `${prefix}.ctl.members`,
    membersGet: `${prefix}.ctl.members.get`,
    control: `${prefix}.ctl.>`,
    endpoint: (partition, attempt, name) => `${prefix}.p.${partition}.${attempt}.${name}`,
    endpoints: (partition, attempt) => `${prefix}.p.${partition}.${attempt}.*`,
    spark: (event) => `${prefix}.spark.${event}`,
  };
}
