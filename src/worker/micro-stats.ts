/**
 * The `$SRV.STATS` view of a partition's request records: each micro-service endpoint reads its
 * counts from the {@link RequestRecorder}'s record instead of counting requests a second time.
 */
import type { Service } from '@nats-io/services';
import type { EndpointRecord } from './request-recorder.js';

/**
 * The stats object the services library keeps per endpoint and answers `$SRV.STATS` from. Not in
 * the library's typings: this is its shape in the pinned version, and test/micro-service.test.ts
 * fails if it changes.
 */
interface EndpointStats {
  name: string;
  subject: string;
  queue: string;
  /** Called by the library after a handler's synchronous part. */
  countLatency(start: number): void;
  /** Called by the library when a handler throws. */
  countError(err: Error): void;
  /** What `$SRV.STATS` shows of this endpoint. */
  stats(qi?: unknown): MicroEndpointStats;
  /** The library's `reset()`: the counts start over in this view only. */
  reset(qi?: unknown): void;
}

/** One endpoint's entry in a `$SRV.STATS` answer (times in nanoseconds). */
interface MicroEndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  processing_time: number;
  average_processing_time: number;
  last_error?: string;
  data?: unknown;
}

/** The service object behind {@link Service}, as far as its endpoints' stats. */
interface ServiceWithStats {
  handlers: { name: string; stats: EndpointStats }[];
}

/** `$SRV.STATS` of one endpoint, read from its record; what a `reset()` zeroed is subtracted. */
function statsView(from: EndpointStats, record: EndpointRecord): EndpointStats {
  const { name, subject, queue } = from;
  let base = { requests: 0, errors: 0, processingMs: 0 };
  return {
    name,
    subject,
    queue,
    // The handler records its own requests when it answers them; the library's count would be the second.
    countLatency: () => {},
    countError: (err) => {
      record.errors++;
      record.lastError = err.message;
    },
    stats() {
      const num_requests = record.requests - base.requests;
      const processing_time = Math.round((record.processingMs - base.processingMs) * 1e6);
      const last_error = record.errors > base.errors ? record.lastError : undefined;
      return {
        name,
        subject,
        queue_group: queue,
        num_requests,
        num_errors: record.errors - base.errors,
        processing_time,
        average_processing_time: num_requests > 0 ? Math.round(processing_time / num_requests) : 0,
        ...(last_error !== undefined && { last_error }),
      };
    },
    reset() {
      base = { requests: record.requests, errors: record.errors, processingMs: record.processingMs };
    },
  };
}

/** Makes the stats `$SRV.STATS` answers for endpoint `name` of `service` a view of `record`. */
export function shareEndpointStats(service: Service, name: string, record: EndpointRecord): void {
  const handler = (service as unknown as ServiceWithStats).handlers.find((h) => h.name === name);
  if (handler) handler.stats = statsView(handler.stats, record);
}
