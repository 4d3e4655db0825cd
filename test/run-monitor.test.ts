/**
 * What the dashboard keeps of a run (RunMonitor), fed by hand with the events, lines and reports a
 * run produces: restarts and their causes, request rates from cumulative reports, reports of a
 * replaced attempt dropped, bounded log tails and timeline, lines of other runs ignored.
 */
import test from 'ava';
import { LOG_TAIL_LINES, RunMonitor, TIMELINE_ENTRIES } from '../src/driver/dashboard/run-monitor.js';
import type { StatsReport } from '../src/protocol/messages.js';
import { MAX_REPORTED_ENDPOINTS, RequestStats } from '../src/worker/request-stats.js';
import { RequestRecorder } from '../src/worker/request-recorder.js';
import type { HttpRequest } from '../src/transport/http.js';

const ID = 'sps-test';

function monitor(): { m: RunMonitor; changes: () => number } {
  const m = new RunMonitor(2, () => ({ id: ID, state: 'running', launcher: 'embedded' }));
  let n = 0;
  m.onChange(() => n++);
  return { m, changes: () => n };
}

function report(attempt: number, requests: number, errors = 0, intervalMs = 1000): StatsReport {
  return { attempt, intervalMs, total: { name: 'total', requests, errors, p50: 0.5, p99: 2 }, endpoints: [{ name: 'nats ping', requests, errors }] };
}

test('a retry is a restart with its cause; the old attempt’s counters and reports are dropped', (t) => {
  const { m, changes } = monitor();
  m.member({ kind: 'registered', partition: 1, attempt: 0, state: 'registered', host: 'h', port: 1, pid: 10 });
  m.member({ kind: 'serving', partition: 1, attempt: 0, state: 'serving', host: 'h', port: 1, pid: 10 });
  m.stats(1, report(0, 100));
  m.stats(1, report(0, 350, 2));
  let row = m.snapshot().partitions[1]!;
  t.is(row.requests?.requests, 350);
  t.is(row.requests?.errors, 2);
  t.is(row.requests?.rate, 250, 'per second from the difference of cumulative counts');

  m.member({ kind: 'failed', partition: 1, attempt: 0, state: 'failed', reason: 'killed by SIGKILL' });
  m.member({ kind: 'replaced', partition: 1, attempt: 1, state: 'registered', previousAttempt: 0, reason: 'killed by SIGKILL', pid: 11 });
  m.member({ kind: 'registered', partition: 1, attempt: 1, state: 'registered', pid: 11 });
  row = m.snapshot().partitions[1]!;
  t.is(row.attempt, 1);
  t.is(row.pid, 11);
  t.is(row.restartCount, 1);
  t.deepEqual(
    row.restarts.map((r) => [r.previousAttempt, r.attempt, r.reason]),
    [[0, 1, 'killed by SIGKILL']],
  );
  t.is(row.requests, undefined);
  m.stats(1, report(0, 999));
  t.is(m.snapshot().partitions[1]!.requests, undefined, 'a late report of attempt 0 is dropped');
  m.stats(1, report(1, 40, 0, 500));
  t.is(m.snapshot().partitions[1]!.requests?.rate, 80);
  t.deepEqual(
    m.snapshot().timeline.map((e) => `${e.partition} ${e.attempt} ${e.kind}`),
    ['1 0 registered', '1 0 serving', '1 0 failed', '1 1 replaced', '1 1 registered'],
  );
  t.true(changes() >= 8);
});

test('log tails keep the last lines of each partition’s workers only; the timeline is bounded', (t) => {
  const { m } = monitor();
  for (let i = 0; i < LOG_TAIL_LINES + 5; i++) m.record({ cluster: ID, partition: 0, attempt: 2 }, `line ${i}`);
  m.record({ cluster: ID, partition: 7, attempt: 0 }, 'no such partition');
  m.record({ cluster: ID, component: 'spark' }, "the launcher's own");
  const rows = m.snapshot().partitions;
  t.is(rows[0]!.log.length, LOG_TAIL_LINES);
  t.is(rows[0]!.log[0], 'a2 line 5');
  t.is(rows[0]!.log.at(-1), `a2 line ${LOG_TAIL_LINES + 4}`);
  t.deepEqual(rows[1]!.log, []);

  for (let i = 0; i < TIMELINE_ENTRIES + 10; i++) m.state({ state: 'running', previous: 'starting' });
  t.is(m.snapshot().timeline.length, TIMELINE_ENTRIES);
});

test('Spark job events set the job shown in the header', (t) => {
  const { m } = monitor();
  m.spark({ type: 'job_started', group: 'g1' });
  t.deepEqual(m.snapshot().cluster.job, { state: 'running', group: 'g1' });
  m.spark({ type: 'job_failed', error: 'stage lost', cancelled: false });
  t.deepEqual(m.snapshot().cluster.job, { state: 'failed', group: 'g1', error: 'stage lost' });
  t.regex(m.snapshot().timeline.at(-1)!.detail!, /job failed: stage lost/);
});

test('a worker’s request counters: per endpoint and in total, errors from throws and rejections, latency windows reset per report', async (t) => {
  const rec = await RequestRecorder.create();
  const stats = new RequestStats(rec);
  const ok = rec.timeHttp('http GET /app/ok', () => 'fine');
  const bad = rec.timeHttp('http GET /app/bad', () => {
    throw new Error('no');
  });
  const later = rec.timeHttp('http GET /app/later', () => Promise.reject(new Error('later no')));
  const req = {} as HttpRequest;
  for (let i = 0; i < 5; i++) t.is(ok(req), 'fine');
  t.throws(() => bad(req));
  await t.throwsAsync(later(req) as Promise<unknown>);
  rec.record(rec.endpoint('nats ping'), performance.now());
  const first = stats.take(3, 1000);
  t.is(first.attempt, 3);
  t.deepEqual([first.total.requests, first.total.errors], [8, 2]);
  t.deepEqual(
    first.endpoints.map((e) => [e.name, e.requests, e.errors]),
    [
      ['http GET /app/ok', 5, 0],
      ['http GET /app/bad', 1, 1],
      ['http GET /app/later', 1, 1],
      ['nats ping', 1, 0],
    ],
  );
  t.true(first.total.p50! > 0 && first.total.p99! >= first.total.p50!);
  const second = stats.take(3, 1000);
  t.deepEqual([second.total.requests, second.total.errors], [8, 2], 'counts are cumulative');
  t.is(second.total.p50, undefined, 'no request in the second interval: no percentiles');
});

test('a partition reports its counters only when they changed, and once more when the rate is back at rest', async (t) => {
  const rec = await RequestRecorder.create();
  const stats = new RequestStats(rec);
  const ping = rec.endpoint('nats ping');
  t.is(stats.takeIfChanged(0, 500), undefined, 'nothing served yet: no report');
  rec.record(ping, performance.now());
  rec.record(ping, performance.now(), '[E] failed');
  const first = stats.takeIfChanged(0, 500);
  t.like(first, { attempt: 0, intervalMs: 500, total: { requests: 2, errors: 1 } });
  t.truthy(first?.total.p50, 'the interval’s latencies are in the report');
  const rest = stats.takeIfChanged(0, 500);
  t.like(rest, { total: { requests: 2, errors: 1 } }, 'one report shows the rate at rest');
  t.is(rest?.total.p50, undefined);
  t.is(stats.takeIfChanged(0, 500), undefined, 'idle: no report');
  t.is(stats.takeIfChanged(0, 500), undefined);
  rec.record(ping, performance.now());
  t.like(stats.takeIfChanged(0, 500), { total: { requests: 3, errors: 1 } });
});

test('a report carries at most the schema’s number of endpoints', async (t) => {
  const rec = await RequestRecorder.create();
  const stats = new RequestStats(rec);
  for (let i = 0; i < MAX_REPORTED_ENDPOINTS + 5; i++) rec.record(rec.endpoint(`http GET /r${i}`), performance.now());
  const r = stats.takeIfChanged(0, 500);
  t.is(r?.endpoints.length, MAX_REPORTED_ENDPOINTS);
  t.is(r?.total.requests, MAX_REPORTED_ENDPOINTS + 5, 'the total still counts every endpoint');
});
