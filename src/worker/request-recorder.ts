/**
 * The one record of a partition's answered requests: per endpoint (NATS and HTTP), each request is
 * recorded once, when its answer goes out. Two views read the same records: the `$SRV` micro-service
 * stats (micro-stats.ts) and the dashboard's `stats` reports (request-stats.ts).
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import type { HttpHandler, HttpResult } from '../transport/http.js';

/** Latencies are recorded in microseconds, from 1 µs up to an hour, to 2 significant digits. */
const HIGHEST_US = 3_600_000_000;

/**
 * hdr-histogram-js's histogram of 32-bit counts (what its `build` makes by default), loaded by its
 * own file, since the package's index also loads its encoders and WebAssembly build.
 */
type Int32Histogram = typeof import('hdr-histogram-js/dist/Int32Histogram.js').default;

/**
 * Latencies one record keeps while the histogram class loads (its first request loads it): a
 * report taken meanwhile reads its percentiles from them; more are counted but not kept.
 */
export const EARLY_LATENCIES = 1024;

let histogramClass: Promise<Int32Histogram> | undefined;

/**
 * Loads the histogram class, once per isolate: at a partition's first recorded request rather than
 * at its start, which it would cost every worker and thread, served or not.
 */
export function loadHistogramClass(): Promise<Int32Histogram> {
  histogramClass ??= import('hdr-histogram-js/dist/Int32Histogram.js').then((m) => {
    // A CommonJS module: Node gives its exports object as the default, which holds the class as its
    // own default; a loader with bundlers' interop (tsx) gives the class itself.
    const exported = m.default as unknown as Int32Histogram & { default?: Int32Histogram };
    return exported.default ?? exported;
  });
  return histogramClass;
}

/** One endpoint's record since the attempt began, plus the latencies since the last dashboard report. */
export class EndpointRecord {
  requests = 0;
  errors = 0;
  /** The last error's `[code] message`, as `$SRV.STATS` shows it. */
  lastError: string | undefined;
  /** The summed time from a request's arrival to its answer. */
  processingMs = 0;
  /** Latencies (µs) since the last report while the histogram class loads (at most {@link EARLY_LATENCIES}). */
  early: number[] = [];
  constructor(
    /** e.g. `nats get_list` or `http GET /app/sum`. */
    readonly name: string,
    /** Latencies since the last report, once the histogram class loaded; never when the dashboard's histograms are off. */
    public window: Histogram | undefined,
  ) {}
}

/** Records the requests of one partition attempt, once each. */
export class RequestRecorder {
  private readonly byName = new Map<string, EndpointRecord>();
  private Histogram32: Int32Histogram | undefined;
  private loading = false;

  private constructor(
    /** Whether records keep latencies for the dashboard. */
    readonly keepsHistograms: boolean,
  ) {}

  /**
   * A new recorder. With `histograms` (the default) each record keeps latencies for the dashboard,
   * in a histogram once the first recorded request loaded the class; without, only the counts and
   * times `$SRV` reports are kept.
   */
  static async create(options: { histograms?: boolean } = {}): Promise<RequestRecorder> {
    return new RequestRecorder(options.histograms !== false);
  }

  /** A new, empty latency histogram, or `undefined` while this recorder keeps none (off, or not loaded yet). */
  histogram(): Histogram | undefined {
    if (!this.Histogram32) return undefined;
    const h = new this.Histogram32(1, HIGHEST_US, 2);
    h.autoResize = true;
    return h;
  }

  /** The record of one endpoint, made on first use. */
  endpoint(name: string): EndpointRecord {
    let r = this.byName.get(name);
    if (!r) this.byName.set(name, (r = new EndpointRecord(name, this.histogram())));
    return r;
  }

  /** Loads the histogram class, then gives every record its window, with the latencies it kept meanwhile. */
  private load(): void {
    if (this.loading) return;
    this.loading = true;
    loadHistogramClass().then(
      (H) => {
        this.Histogram32 = H;
        for (const r of this.byName.values()) {
          r.window = this.histogram();
          for (const us of r.early) r.window!.recordValue(us);
          r.early = [];
        }
      },
      // Not expected (an installed dependency); the reports then read the kept latencies.
      () => {},
    );
  }

  /** Every endpoint's record, in the order they were made. */
  records(): IterableIterator<EndpointRecord> {
    return this.byName.values();
  }

  /** Records one answered request of `r` that arrived at `start` (`performance.now()`); `error` when it failed. */
  record(r: EndpointRecord, start: number, error?: string): void {
    const ms = performance.now() - start;
    r.requests++;
    r.processingMs += ms;
    if (error !== undefined) {
      r.errors++;
      r.lastError = error;
    }
    const us = Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000)));
    if (r.window) r.window.recordValue(us);
    else if (this.keepsHistograms) {
      if (r.early.length < EARLY_LATENCIES) r.early.push(us);
      this.load();
    }
  }

  /**
   * Wraps an HTTP route handler so its requests are recorded under `name`: a throw or a rejection
   * is an error (the server answers it 500).
   */
  timeHttp(name: string, handler: HttpHandler): HttpHandler {
    const r = this.endpoint(name);
    const failed = (start: number, err: unknown): void => this.record(r, start, err instanceof Error ? err.message : String(err));
    return (req) => {
      const start = performance.now();
      let result: HttpResult | Promise<HttpResult>;
      try {
        result = handler(req);
      } catch (err) {
        failed(start, err);
        throw err;
      }
      if (!(result instanceof Promise)) {
        this.record(r, start);
        return result;
      }
      return result.then(
        (res) => {
          this.record(r, start);
          return res;
        },
        (err: unknown) => {
          failed(start, err);
          throw err;
        },
      );
    };
  }
}

/**
 * Where a worker's {@link RequestRecorder} rides on its partition context when the dashboard
 * counts requests, so an HTTP server built by the user's module (which may load another copy of
 * this package) still finds it.
 */
export const REQUEST_RECORDER = Symbol.for('spark-partition-server.requestStats');

/** The request recorder attached to a partition context, if any. */
export function requestRecorderOf(ctx: object): RequestRecorder | undefined {
  return (ctx as { [REQUEST_RECORDER]?: RequestRecorder })[REQUEST_RECORDER];
}
