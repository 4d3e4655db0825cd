/**
 * What the dashboard shows about one cluster run, kept on the driver from the start of the run:
 * each partition's member (from the cluster's `member` events), its restarts and their causes, a
 * timeline of state changes, request counters (the workers' `stats` reports), and a bounded tail
 * of its log lines. Nothing here is on the data path: requests never pass through the driver.
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { ClusterState, MemberEvent, SparkEvent, StateEvent } from '../cluster-events.js';
import { decodeStats, type StatsReport } from '../../protocol/messages.js';
import { partitionOf, type Subjects } from '../../protocol/subjects.js';
import type { PartitionState } from '../../protocol/types.js';

/** Log lines kept per partition. */
export const LOG_TAIL_LINES = 40;
/** Timeline entries kept (the oldest go first). */
export const TIMELINE_ENTRIES = 300;
/** Restarts kept per partition (the count goes on). */
const RESTARTS_KEPT = 20;

/** A worker's output line as the launchers prefix it: `[sps <cluster> p<partition>/a<attempt>] …`. */

/** One restart of a partition: the attempt that replaced another, and why. */
export interface RestartView {
  at: number;
  attempt: number;
  previousAttempt: number;
  reason?: string;
}

/** Request counters of a partition's current attempt. */
export interface RequestView {
  /** When the last report came (ms since the epoch). */
  at: number;
  requests: number;
  errors: number;
  /** Requests per second over the last report's interval. */
  rate: number;
  /** Latency (ms) over the last report's interval; absent when it had no request. */
  p50?: number;
  p99?: number;
  endpoints: StatsReport['endpoints'];
}

/** One partition's row. */
export interface PartitionView {
  partition: number;
  attempt?: number;
  state?: PartitionState | 'lost';
  host?: string;
  port?: number | null;
  pid?: number;
  /** When the current attempt registered (ms since the epoch): its uptime starts there. */
  since?: number;
  restarts: RestartView[];
  restartCount: number;
  /** The last failure's reason, also when it was not followed by a restart. */
  lastError?: string;
  requests?: RequestView;
  /** Live updates (option `updates`): what its current attempt has not applied yet, as the stream counts it. */
  updates?: { pending: number; appliedSeq: number };
  log: string[];
}

/** One entry of the timeline. */
export interface TimelineEntry {
  at: number;
  /** A member event's kind, `cluster` for the cluster's state, `spark` for a Spark job event. */
  kind: MemberEvent['kind'] | 'cluster' | 'spark';
  partition?: number;
  attempt?: number;
  detail?: string;
}

/** What the run runs on, for the header. */
export interface RunInfo {
  id?: string;
  state: ClusterState;
  launcher?: string;
  spark?: { applicationId: string; master: string; sparkVersion: string };
}

/** Everything the page renders, as sent over the WebSocket. */
export interface DashboardSnapshot {
  /** The driver's clock when the snapshot was taken (ms since the epoch), for uptimes. */
  now: number;
  cluster: RunInfo & { partitions: number; job?: { state: 'running' | 'finished' | 'failed'; group?: string; error?: string; stage?: SparkEvent['stage'] } };
  partitions: PartitionView[];
  timeline: TimelineEntry[];
}

/** Keeps the dashboard's view of one run; listeners hear of every change. */
export class RunMonitor {
  private readonly rows: PartitionView[];
  private readonly timeline: TimelineEntry[] = [];
  private job?: DashboardSnapshot['cluster']['job'];
  private readonly listeners = new Set<() => void>();
  private sub?: Subscription;

  constructor(
    private readonly partitions: number,
    private readonly info: () => RunInfo,
  ) {
    this.rows = Array.from({ length: partitions }, (_, partition) => ({ partition, restarts: [], restartCount: 0, log: [] }));
  }

  /** Calls `listener` after every change; returns the function that stops it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  private note(entry: Omit<TimelineEntry, 'at'>): void {
    this.timeline.push({ at: Date.now(), ...entry });
    if (this.timeline.length > TIMELINE_ENTRIES) this.timeline.shift();
  }

  /** A `member` event of the cluster. */
  member(e: MemberEvent): void {
    const row = this.rows[e.partition];
    if (!row) return;
    const now = Date.now();
    if (e.kind === 'replaced') {
      row.restarts.push({ at: now, attempt: e.attempt, previousAttempt: e.previousAttempt ?? -1, reason: e.reason });
      if (row.restarts.length > RESTARTS_KEPT) row.restarts.shift();
      row.restartCount++;
      // The old attempt's counters say nothing about the new one.
      row.requests = undefined;
    }
    if (e.kind === 'registered' || row.attempt !== e.attempt) row.since = now;
    if (e.kind === 'failed' || e.kind === 'lost') row.lastError = e.reason;
    row.attempt = e.attempt;
    row.state = e.kind === 'lost' ? 'lost' : (e.state ?? row.state);
    if (e.host !== undefined) row.host = e.host;
    if (e.port !== undefined) row.port = e.port;
    if (e.pid !== undefined) row.pid = e.pid;
    this.note({ kind: e.kind, partition: e.partition, attempt: e.attempt, detail: e.reason });
    this.changed();
  }

  /** A `state` event of the cluster. */
  state(e: StateEvent): void {
    this.note({ kind: 'cluster', detail: e.error ? `${e.state}: ${e.error.message}` : e.state });
    this.changed();
  }

  /** A `spark` event of the cluster. */
  spark(e: SparkEvent): void {
    if (e.type === 'stage') {
      // Task counts change often: shown in the header, not noted in the timeline.
      if (this.job) this.job = { ...this.job, stage: e.stage };
      this.changed();
      return;
    }
    if (e.type === 'job_started') this.job = { state: 'running', group: e.group };
    else if (e.type === 'job_finished') this.job = { ...this.job, state: 'finished' };
    else this.job = { ...this.job, state: 'failed', error: e.error };
    this.note({ kind: 'spark', detail: e.type === 'job_failed' ? `job failed: ${e.error ?? ''}` : e.type.replace('_', ' ') });
    this.changed();
  }

  /**
   * A log record of the run, with the bindings of the logger it came through: a worker's (bound to
   * its `partition` and `attempt`) is kept in that partition's tail; the launcher's own are not.
   */
  record(bindings: Readonly<Record<string, unknown>>, message: string): void {
    const { partition, attempt } = bindings;
    if (typeof partition !== 'number' || typeof attempt !== 'number') return;
    const row = this.rows[partition];
    if (!row) return;
    for (const line of message.split('\n')) row.log.push(`a${attempt} ${line}`);
    while (row.log.length > LOG_TAIL_LINES) row.log.shift();
    this.changed();
  }

  /** A worker's `stats` report; one from an attempt other than the partition's current one is dropped. */
  stats(partition: number, r: StatsReport): void {
    const row = this.rows[partition];
    if (!row || row.attempt !== r.attempt) return;
    const before = row.requests;
    const delta = r.total.requests - (before?.requests ?? 0);
    const rate = r.intervalMs > 0 ? (Math.max(0, delta) * 1000) / r.intervalMs : 0;
    row.requests = { at: Date.now(), requests: r.total.requests, errors: r.total.errors, rate, p50: r.total.p50, p99: r.total.p99, endpoints: r.endpoints };
    this.changed();
  }

  /** A partition's standing in the run's live updates, read by the driver from the stream. */
  updatesLag(partition: number, lag: { pending: number; appliedSeq: number }): void {
    const row = this.rows[partition];
    if (!row) return;
    const before = row.updates;
    if (before && before.pending === lag.pending && before.appliedSeq === lag.appliedSeq) return;
    row.updates = { pending: lag.pending, appliedSeq: lag.appliedSeq };
    this.changed();
  }

  /** Listens to the workers' `stats` reports on the run's bus; a report that does not decode is dropped. */
  listen(nc: NatsConnection, subjects: Subjects): void {
    this.sub = nc.subscribe(subjects.stats('*'), {
      callback: (err, msg) => {
        if (err) return;
        const p = partitionOf(msg.subject, this.partitions);
        if (p === undefined) return;
        try {
          this.stats(p, decodeStats(msg.subject, msg.data));
        } catch {
          // Malformed: the bus is not trusted, and counters are not worth failing for.
        }
      },
    });
  }

  /** Stops listening to the bus and drops the listeners. */
  close(): void {
    try {
      this.sub?.unsubscribe();
    } catch {
      // The connection is already closed: nothing left to stop.
    }
    this.sub = undefined;
    this.listeners.clear();
  }

  /** The whole view, as the page renders it. */
  snapshot(): DashboardSnapshot {
    return {
      now: Date.now(),
      cluster: { ...this.info(), partitions: this.partitions, ...(this.job ? { job: this.job } : {}) },
      partitions: this.rows,
      timeline: this.timeline,
    };
  }
}
