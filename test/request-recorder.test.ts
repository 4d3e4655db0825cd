/**
 * The one request recorder: a request is recorded once, when answered, and both views read that
 * record: `$SRV.STATS` (through the services library's per-endpoint stats object) and the
 * dashboard's `stats` report. No bus: the service is the library's shape, held in a plain object.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import type { Service } from '@nats-io/services';
import { shareEndpointStats } from '../src/worker/micro-stats.js';
import { RequestRecorder } from '../src/worker/request-recorder.js';
import { RequestStats } from '../src/worker/request-stats.js';

/** What `$SRV.STATS` shows of one endpoint. */
interface Shown {
  num_requests: number;
  num_errors: number;
  processing_time: number;
  average_processing_time: number;
  last_error?: string;
}
interface LibraryStats {
  num_requests: number;
  countLatency(start: number): void;
  countError(err: Error): void;
  stats(): Shown;
  reset(): void;
}

/** A service as the library holds its endpoints: one handler whose stats count for themselves, as the library's do. */
function fakeService(name: string): { service: Service; handler: { name: string; stats: LibraryStats } } {
  const own: LibraryStats & { name: string; subject: string; queue: string } = {
    name,
    subject: `svc.${name}`,
    queue: '',
    num_requests: 0,
    countLatency() {
      this.num_requests++;
    },
    countError() {},
    stats() {
      return { num_requests: this.num_requests, num_errors: 0, processing_time: 0, average_processing_time: 0 };
    },
    reset() {},
  };
  const handler = { name, stats: own as LibraryStats };
  return { service: { handlers: [handler] } as unknown as Service, handler };
}

/** A recorder, the dashboard's view of it when it keeps histograms, and endpoint `name`'s record shared with a fake service. */
async function setup(name: string, histograms = true) {
  const recorder = await RequestRecorder.create({ histograms });
  const { service, handler } = fakeService(name);
  const record = recorder.endpoint(`nats ${name}`);
  shareEndpointStats(service, name, record);
  return { recorder, record, micro: handler.stats, dashboard: () => new RequestStats(recorder) };
}

test('one request is recorded once, and $SRV.STATS and the dashboard’s report agree on it', async (t) => {
  const { recorder, record, micro: stats, dashboard: view } = await setup('sum');
  const dashboard = view();

  // One request as the library delivers it: its wrapper times the handler's synchronous part...
  const libraryStart = Date.now();
  const start = performance.now();
  // ...and the handler records the request when it answers.
  recorder.record(record, start);
  stats.countLatency(libraryStart);

  t.is(record.requests, 1, 'recorded once');
  const micro = stats.stats();
  const report = dashboard.take(0, 1000);
  t.is(micro.num_requests, 1, 'the library’s own count is not a second record');
  t.is(report.endpoints[0]!.requests, micro.num_requests);
  t.is(report.total.requests, micro.num_requests);
  t.is(micro.processing_time, Math.round(record.processingMs * 1e6), 'processing time in nanoseconds, from the same record');
  t.is(micro.average_processing_time, micro.processing_time);
  t.truthy(report.endpoints[0]!.p50, 'the same request is in the dashboard’s latency window');
});

test('an error reply is one record, shown as an error by both views with its code and message', async (t) => {
  const { recorder, record, micro: stats, dashboard: view } = await setup('boom');
  const dashboard = view();

  recorder.record(record, performance.now());
  recorder.record(record, performance.now(), '[TEST_BOOM] boom');
  const micro = stats.stats();
  const report = dashboard.take(0, 1000);
  t.like(micro, { num_requests: 2, num_errors: 1, last_error: '[TEST_BOOM] boom' });
  t.like(report.endpoints[0], { name: 'nats boom', requests: 2, errors: 1 });
  t.like(report.total, { requests: 2, errors: 1 });
});

test('the library’s reset starts $SRV.STATS over without touching the dashboard’s counts', async (t) => {
  const { recorder, record, micro: stats, dashboard: view } = await setup('sum');
  const dashboard = view();
  recorder.record(record, performance.now(), '[E] first');
  stats.reset();
  t.like(stats.stats(), { num_requests: 0, num_errors: 0, processing_time: 0, average_processing_time: 0 });
  t.is(stats.stats().last_error, undefined);
  recorder.record(record, performance.now());
  t.like(stats.stats(), { num_requests: 1, num_errors: 0 });
  t.like(dashboard.take(0, 1000).total, { requests: 2, errors: 1 });
});

test('without histograms the recorder still counts for $SRV.STATS, and the dashboard cannot report from it', async (t) => {
  const { recorder, record, micro: stats, dashboard } = await setup('sum', false);
  recorder.record(record, performance.now());
  t.is(record.window, undefined);
  t.is(stats.stats().num_requests, 1);
  t.throws(dashboard, { instanceOf: TypeError });
});
