import { fileURLToPath } from 'node:url';
import { ROOT } from './spark.js';
import { runToEnd } from './proc.js';

/**
 * Runs `fn` with `inflight` calls outstanding at all times until `maxRequests` completed or
 * `maxMs` passed, and returns completed requests per second. Any failed call fails the run.
 */
export async function closedLoop(
  fn: (i: number) => Promise<unknown>,
  inflight: number,
  maxRequests: number,
  maxMs: number,
): Promise<{ requests: number; ms: number; perSec: number }> {
  let issued = 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + maxMs;
  const lane = async (): Promise<void> => {
    while (issued < maxRequests && performance.now() < deadline) {
      issued++;
      await fn(issued);
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const ms = performance.now() - t0;
  return { requests: done, ms, perSec: (done / ms) * 1000 };
}

/** What autocannon reports (the fields used here). */
export interface AutocannonResult {
  requests: { average: number; mean: number; total: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
}

/** Load settings of autocannon runs. */
export interface AutocannonSettings {
  connections: number;
  pipelining: number;
  durationSec: number;
}

/** Drives `url` with autocannon (a separate process) and returns its JSON report. */
export async function autocannon(url: string, s: AutocannonSettings): Promise<AutocannonResult> {
  const bin = fileURLToPath(new URL('node_modules/autocannon/autocannon.js', `file://${ROOT}`));
  const r = await runToEnd(
    process.execPath,
    [bin, '-c', String(s.connections), '-p', String(s.pipelining), '-d', String(s.durationSec), '-j', url],
    (s.durationSec + 30) * 1000,
  );
  if (r.code !== 0) throw new Error(`autocannon ${url} exited ${r.code}: ${r.stderr.slice(-1000)}`);
  const res = JSON.parse(r.stdout) as AutocannonResult;
  if (res.errors > 0 || res.non2xx > 0) throw new Error(`autocannon ${url}: ${res.errors} errors, ${res.non2xx} non-2xx responses`);
  return res;
}
