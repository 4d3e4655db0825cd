import { summarize } from './stats.js';
import type { Measurement } from './types.js';

/** Bounds of a sampling loop: at most `count` samples and at most `maxMs` of wall time. */
export interface SampleBounds {
  count: number;
  maxMs: number;
  /** Untimed calls before sampling. Default: a tenth of `count`, at most 200. */
  warmup?: number;
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function now(): number {
  return performance.now();
}

/**
 * Times `fn` once per sample, one call at a time, within `bounds`, and returns the durations in ms.
 * `fn` receives the sample index (so it can vary its input).
 */
export async function sampleAsync(fn: (i: number) => Promise<unknown>, bounds: SampleBounds): Promise<number[]> {
  const warmup = bounds.warmup ?? Math.min(200, Math.ceil(bounds.count / 10));
  const deadline = now() + bounds.maxMs;
  for (let i = 0; i < warmup && now() < deadline; i++) await fn(i);
  const out: number[] = [];
  for (let i = 0; i < bounds.count && now() < deadline; i++) {
    const t0 = now();
    await fn(i);
    out.push(now() - t0);
  }
  return out;
}

/** Builds a measurement from samples. */
export function measure(name: string, unit: string, samples: readonly number[], extra: Partial<Measurement> = {}): Measurement {
  return { name, unit, ...summarize(samples), ...extra };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects with `what` when `p` does not settle within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no result within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
