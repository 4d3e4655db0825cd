import type { SupervisorContext } from '../actors/supervisor.js';
import type { Member, PartitionState } from '../protocol/types.js';

/** Lifecycle of a {@link Cluster}. */
export type ClusterState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/**
 * What happened to one partition:
 * - `registered`, `serving`, `draining`, `finished`: its current attempt reached that state;
 * - `replaced`: a newer attempt took over (`previousAttempt`, and `reason`, the old attempt's last error);
 * - `failed`: its current attempt failed (`reason`), and it may be retried;
 * - `lost`: it ran out of attempts (`reason`, `failures`); the cluster fails.
 */
export interface MemberEvent {
  /** What happened; see above. */
  kind: 'registered' | 'serving' | 'replaced' | 'failed' | 'lost' | 'draining' | 'finished';
  /** Index of the partition. */
  partition: number;
  /** Attempt number of the partition's current (or, for `replaced`, new) worker. */
  attempt: number;
  /** The member's state after the event (`undefined` for a partition lost before it ever registered). */
  state?: PartitionState;
  /** Host the member advertises. */
  host?: string;
  /** HTTP port of the member, or `null` when it serves over NATS only. */
  port?: number | null;
  /** Process id of the member's worker. */
  pid?: number;
  /** For `replaced`: the attempt that was replaced. */
  previousAttempt?: number;
  /** For `replaced`, `failed` and `lost`: the last error of the attempt, as text. */
  reason?: string;
  /** For `lost`: how many attempts failed. */
  failures?: number;
}

/** The cluster's state changed; `error` says why when it is `failed`. */
export interface StateEvent {
  /** The new state. */
  state: ClusterState;
  /** The state before. */
  previous: ClusterState;
  /** Why the cluster failed (state `failed` only). */
  error?: Error;
}

/** How far `start()` (partitions serving) or `stop()` (results in) has come: `done` of `total`. */
export interface ProgressEvent {
  /** `start`: partitions serving; `stop`: results received. */
  phase: 'start' | 'stop';
  /** Partitions done so far. */
  done: number;
  /** Partitions in the run. */
  total: number;
}

/** A Spark job event of the run (Spark launcher only). */
export interface SparkEvent {
  /** Which Spark job event. */
  type: 'job_started' | 'stage' | 'job_finished' | 'job_failed';
  /**
   * For `stage`: a stage of the job whose task counts changed (tasks running, completed and failed
   * out of `tasks`; `attempt` counts the stage's retries, e.g. a barrier group restarting).
   */
  stage?: {
    /** Spark's stage id. */
    id: number;
    /** Spark's attempt id of the stage: 0 first, one more on each retry. */
    attempt: number;
    /** Spark's name of the stage (the call site of its action), cut to 1024 characters. */
    name: string;
    /** Tasks in the stage: one per partition. */
    tasks: number;
    /** Tasks running now. */
    active: number;
    /** Tasks completed. */
    completed: number;
    /** Task attempts that failed so far. */
    failed: number;
  };
  /** Spark's job group, for `job_started`. */
  group?: string;
  /** For `job_failed`: Spark's error, and whether the run cancelled it. */
  error?: string;
  /** For `job_failed`: `true` when the run cancelled the job. */
  cancelled?: boolean;
}

/**
 * The events of a {@link Cluster}, for `cluster.on(name, listener)`. Listeners run synchronously
 * in order; an exception thrown by one is the listener's own and is not caught.
 */
export interface ClusterEvents {
  /** A partition's state changed. */
  member: [MemberEvent];
  /** The cluster's state changed. */
  state: [StateEvent];
  /** `start()` or `stop()` progressed. */
  progress: [ProgressEvent];
  /** A Spark job of the run started, finished or failed. */
  spark: [SparkEvent];
}

const NOTED: Partial<Record<PartitionState, MemberEvent['kind']>> = {
  registered: 'registered',
  serving: 'serving',
  draining: 'draining',
  finished: 'finished',
  failed: 'failed',
};

function fromMember(kind: MemberEvent['kind'], m: Member): MemberEvent {
  return { kind, partition: m.partition, attempt: m.attempt, state: m.state, host: m.host, port: m.port, pid: m.pid };
}

/**
 * The member events between two supervisor views, in partition order: what a listener would have
 * seen had it watched every change. Pure: the cluster calls it on each new snapshot.
 */
export function memberEvents(prev: SupervisorContext | undefined, next: SupervisorContext): MemberEvent[] {
  const out: MemberEvent[] = [];
  for (let p = 0; p < next.partitions; p++) {
    const before = prev?.members[p];
    const now = next.members[p];
    if (now && (!before || now.attempt !== before.attempt)) {
      if (before) out.push({ ...fromMember('replaced', now), previousAttempt: before.attempt, reason: prev?.lastErrors[p] });
      // A new attempt's first state: it registered (and may be serving already in the same step).
      out.push(fromMember('registered', now));
      if (now.state !== 'registered' && NOTED[now.state]) out.push(fromMember(NOTED[now.state]!, now));
    } else if (now && before && now.state !== before.state && NOTED[now.state]) {
      // Finished without a draining seen (its result came before its states): it drained first.
      if (now.state === 'finished' && before.state !== 'draining') out.push({ ...fromMember('draining', now), state: 'draining' });
      const e = fromMember(NOTED[now.state]!, now);
      if (now.state === 'failed') e.reason = now.error?.message ?? next.lastErrors[p];
      out.push(e);
    }
    const lost = next.lost[p];
    if (lost && !prev?.lost[p])
      out.push({ kind: 'lost', partition: p, attempt: now?.attempt ?? 0, state: now?.state, reason: lost.error, failures: lost.failures });
  }
  return out;
}

/** Partitions serving now (start progress). */
export function servingCount(ctx: SupervisorContext): number {
  return Object.values(ctx.members).filter((m) => m.state === 'serving').length;
}

/** Results in (stop progress). */
export function resultCount(ctx: SupervisorContext): number {
  return Object.keys(ctx.results).length;
}
