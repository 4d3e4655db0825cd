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
 * hdr-histogram-js's histogram of 32-bit counts (what its `build` makes by default): loaded by
 * {@link RequestRecorder.create} only when histograms are kept, and by its own file, since the
 * package's index also loads its encoders and WebAssembly build, which cost every worker's start.
 */
type Int32Histogram = typeof import('hdr-histogram-js/dist/Int32Histogram.js').default;

/** One endpoint's record since the attempt began, plus the latencies since the last dashboard report. */
export class EndpointRecord {
  requests = 0;
  errors = 0;
  /** The last error's `[code] message`, as `$SRV.STATS` shows it. */
  lastError: string | undefined;
  /** The summed time from a request's arrival to its answer. */
  processingMs = 0;
  constructor(
    /** e.g. `nats get_list` or `http GET /app/sum`. */
    readonly name: string,
    /** Latencies since the last report; absent when the dashboard's histograms are off. */
    readonly window: Histogram | undefined,
  ) {}
}

/** Records the requests of one partition attempt, once each. */
export class RequestRecorder {
  private readonly byName = new Map<string, EndpointRecord>();

  private constructor(private readonly Histogram32: Int32Histogram | undefined) {}

  /**
   * A new recorder. With `histograms` (the default) each record keeps a latency window for the
   * dashboard, and the histogram package is loaded here; without, only the counts and times `$SRV`
   * reports are kept.
   */
  static async create(options: { histograms?: boolean } = {}): Promise<RequestRecorder> {
    if (options.histograms === false) return new RequestRecorder(undefined);
    const m = await import('hdr-histogram-js/dist/Int32Histogram.js');
    // A CommonJS module: Node gives its exports object as the default, which holds the class as its
    // own default; a loader with bundlers' interop (tsx) gives the class itself.
    const exported = m.default as unknown as Int32Histogram & { default?: Int32Histogram };
    return new RequestRecorder(exported.default ?? exported);
  }

  /** A new, empty latency histogram, or `undefined` when this recorder keeps none. */
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
    r.window?.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000))));
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
