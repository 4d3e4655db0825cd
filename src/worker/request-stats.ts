/**
 * The dashboard's view of a partition's request records (request-recorder.ts): per endpoint,
 * requests and errors since the attempt began, and p50/p99 of the requests answered since the last
 * report. The worker publishes them as a `stats` message at a heartbeat tick only when they changed
 * (plus one report that shows the rate back at rest), so an idle partition sends none; the driver's
 * dashboard turns them into requests/s, errors and p50/p99.
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import type { NatsConnection } from '../transport/bus.js';
import { encodeStats, type StatsReport } from '../protocol/messages.js';
import type { RequestRecorder } from './request-recorder.js';

/** At most this many endpoints in one report: the schema's bound, so a report always decodes. */
export const MAX_REPORTED_ENDPOINTS = 1024;

/** One endpoint's (or the total's) counters as a report carries them. */
type Reported = StatsReport['total'];

/** The `p`th percentile (nearest rank) of latencies in µs, in ms. */
function percentile(sortedUs: number[], p: number): number {
  return sortedUs[Math.max(0, Math.ceil((p / 100) * sortedUs.length) - 1)]! / 1000;
}

/** One report line; the latencies come from `window`, or else from the ones kept while it loaded (`early`, µs). */
function report(name: string, requests: number, errors: number, window: Histogram | undefined, early: number[]): Reported {
  const r: Reported = { name, requests, errors };
  if (window && window.totalCount > 0) {
    r.p50 = window.getValueAtPercentile(50) / 1000;
    r.p99 = window.getValueAtPercentile(99) / 1000;
  } else if (early.length > 0) {
    const sorted = [...early].sort((a, b) => a - b);
    r.p50 = percentile(sorted, 50);
    r.p99 = percentile(sorted, 99);
  }
  window?.reset();
  return r;
}

/** Turns a recorder's records into the dashboard's `stats` reports. */
export class RequestStats {
  /** The latencies of every endpoint in one interval, summed when a report is taken (once the histogram class loaded). */
  private total: Histogram | undefined;
  /** Requests in total at the last report, and how many that report added. */
  private reported = 0;
  private lastDelta = 0;

  /** Reports on `recorder`, which must keep histograms. */
  constructor(private readonly recorder: RequestRecorder) {
    if (!recorder.keepsHistograms) throw new TypeError('the dashboard’s request stats need a recorder that keeps histograms');
  }

  /** The report of the interval that ends now; the latency windows start over. */
  take(attempt: number, intervalMs: number): StatsReport {
    // The total is summed here, once per report, rather than recorded twice per request.
    this.total ??= this.recorder.histogram();
    let requests = 0;
    let errors = 0;
    const early: number[] = [];
    const endpoints: Reported[] = [];
    for (const r of this.recorder.records()) {
      requests += r.requests;
      errors += r.errors;
      if (r.window) this.total?.add(r.window);
      early.push(...r.early);
      if (endpoints.length < MAX_REPORTED_ENDPOINTS) endpoints.push(report(r.name, r.requests, r.errors, r.window, r.early));
      else r.window?.reset();
      r.early = [];
    }
    this.lastDelta = requests - this.reported;
    this.reported = requests;
    return { attempt, intervalMs, total: report('total', requests, errors, this.total, early), endpoints };
  }

  /**
   * Like {@link take}, or `undefined` when the report would say nothing new: no request since the
   * last report, which itself already showed the rate at rest (or there was none yet).
   */
  takeIfChanged(attempt: number, intervalMs: number): StatsReport | undefined {
    let requests = 0;
    for (const r of this.recorder.records()) requests += r.requests;
    if (requests === this.reported && this.lastDelta === 0) return undefined;
    return this.take(attempt, intervalMs);
  }
}

/**
 * Publishes `stats` on `subject` at every `intervalMs` tick where they changed, until stopped; the
 * timer never keeps the process alive. Skipped ticks had no request, so a report's `intervalMs`
 * (the time since the previous tick) spans every request it adds.
 */
export function reportStats(nc: NatsConnection, subject: string, stats: RequestStats, attempt: number, intervalMs: number): { stop(): void } {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const took = Math.max(0, Math.round(now - last));
    last = now;
    if (nc.isClosed()) return;
    const report = stats.takeIfChanged(attempt, took);
    if (report) nc.publish(subject, encodeStats(report));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
