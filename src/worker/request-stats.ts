/**
 * A partition's request counters: per endpoint (NATS and HTTP), requests and errors since the
 * attempt began, and a latency histogram of the requests answered since the last report. The
 * worker publishes them as a `stats` message at a heartbeat tick only when they changed (plus one
 * report that shows the rate back at rest), so an idle partition sends none; the driver's
 * dashboard turns them into requests/s, errors and p50/p99.
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import type { NatsConnection } from '../transport/bus.js';
import { encodeStats, type StatsReport } from '../protocol/messages.js';
import type { HttpHandler, HttpResult } from '../transport/http.js';

/** At most this many endpoints in one report: the schema's bound, so a report always decodes. */
export const MAX_REPORTED_ENDPOINTS = 1024;

/** Latencies are recorded in microseconds, from 1 µs up to an hour, to 2 significant digits. */
const HIGHEST_US = 3_600_000_000;

/**
 * hdr-histogram-js's histogram of 32-bit counts (what its `build` makes by default): loaded by
 * {@link RequestStats.create}, so only workers that count load it, and by its own file, since the
 * package's index also loads its encoders and WebAssembly build, which cost every worker's start.
 */
type Int32Histogram = typeof import('hdr-histogram-js/dist/Int32Histogram.js').default;

function histogram(Histogram32: Int32Histogram): Histogram {
  const h = new Histogram32(1, HIGHEST_US, 2);
  h.autoResize = true;
  return h;
}

class EndpointCounter {
  requests = 0;
  errors = 0;
  constructor(
    readonly name: string,
    readonly window: Histogram,
  ) {}
}

/** One endpoint's (or the total's) counters as a report carries them. */
type Reported = StatsReport['total'];

function report(c: EndpointCounter): Reported {
  const r: Reported = { name: c.name, requests: c.requests, errors: c.errors };
  if (c.window.totalCount > 0) {
    r.p50 = c.window.getValueAtPercentile(50) / 1000;
    r.p99 = c.window.getValueAtPercentile(99) / 1000;
  }
  c.window.reset();
  return r;
}

/** Counts the requests of one partition attempt. */
export class RequestStats {
  private readonly byName = new Map<string, EndpointCounter>();
  private readonly total: EndpointCounter;
  /** Requests in total at the last report, and how many that report added. */
  private reported = 0;
  private lastDelta = 0;

  private constructor(private readonly build: Int32Histogram) {
    this.total = new EndpointCounter('total', histogram(build));
  }

  /** New counters, loading the histogram package on first use. */
  static async create(): Promise<RequestStats> {
    const m = await import('hdr-histogram-js/dist/Int32Histogram.js');
    // A CommonJS module: Node gives its exports object as the default, which holds the class as its
    // own default; a loader with bundlers' interop (tsx) gives the class itself.
    const exported = m.default as unknown as Int32Histogram & { default?: Int32Histogram };
    return new RequestStats(exported.default ?? exported);
  }

  /** The counter of one endpoint, e.g. `nats get_list` or `http GET /app/sum`; made on first use. */
  counter(name: string): EndpointCounter {
    let c = this.byName.get(name);
    if (!c) this.byName.set(name, (c = new EndpointCounter(name, histogram(this.build))));
    return c;
  }

  /** Records one answered request of `c` that began at `start` (`performance.now()`). */
  record(c: EndpointCounter, start: number, failed: boolean): void {
    c.requests++;
    if (failed) c.errors++;
    c.window.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round((performance.now() - start) * 1000))));
  }

  /** The report of the interval that ends now; the latency windows start over. */
  take(attempt: number, intervalMs: number): StatsReport {
    // The total is summed here, once per report, rather than recorded twice per request.
    const total = this.total;
    total.requests = 0;
    total.errors = 0;
    for (const c of this.byName.values()) {
      total.requests += c.requests;
      total.errors += c.errors;
      total.window.add(c.window);
    }
    this.lastDelta = total.requests - this.reported;
    this.reported = total.requests;
    const endpoints = [...this.byName.values()].slice(0, MAX_REPORTED_ENDPOINTS).map(report);
    return { attempt, intervalMs, total: report(total), endpoints };
  }

  /**
   * Like {@link take}, or `undefined` when the report would say nothing new: no request since the
   * last report, which itself already showed the rate at rest (or there was none yet).
   */
  takeIfChanged(attempt: number, intervalMs: number): StatsReport | undefined {
    let requests = 0;
    for (const c of this.byName.values()) requests += c.requests;
    if (requests === this.reported && this.lastDelta === 0) return undefined;
    return this.take(attempt, intervalMs);
  }

  /**
   * Wraps an HTTP route handler so its requests are counted under `name`: a throw or a rejection
   * is an error (the server answers it 500).
   */
  timeHttp(name: string, handler: HttpHandler): HttpHandler {
    const c = this.counter(name);
    return (req) => {
      const start = performance.now();
      let result: HttpResult | Promise<HttpResult>;
      try {
        result = handler(req);
      } catch (err) {
        this.record(c, start, true);
        throw err;
      }
      if (!(result instanceof Promise)) {
        this.record(c, start, false);
        return result;
      }
      return result.then(
        (r) => {
          this.record(c, start, false);
          return r;
        },
        (err: unknown) => {
          this.record(c, start, true);
          throw err;
        },
      );
    };
  }
}

/**
 * Where a worker's {@link RequestStats} rides on its partition context, so an HTTP server built by
 * the user's module (which may load another copy of this package) still finds it.
 */
export const REQUEST_STATS = Symbol.for('spark-partition-server.requestStats');

/** The request counters attached to a partition context, if any. */
export function requestStatsOf(ctx: object): RequestStats | undefined {
  return (ctx as { [REQUEST_STATS]?: RequestStats })[REQUEST_STATS];
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
