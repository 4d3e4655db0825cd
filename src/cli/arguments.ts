/**
 * Parsers for the values of `sps` options. Each throws commander's InvalidArgumentError, so a bad
 * value is reported with the option's name and the usage, and `sps` exits with code 2.
 */
import { InvalidArgumentError } from 'commander';

/** A whole number ≥ 1. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`must be a whole number ≥ 1, got "${value}"`);
  return n;
}

/** A whole number ≥ 0 (a partition). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`must be a whole number ≥ 0, got "${value}"`);
  return n;
}

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A TCP port, 0..65535 (0: any free port). */
export function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) throw new InvalidArgumentError(`must be a port number 0..65535, got "${value}"`);
  return n;
}

/** A duration in milliseconds: plain seconds (`30`), or a number with `ms`, `s`, `m` or `h` (`500ms`, `2m`). */
export function durationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`must be a duration like 30, 30s, 500ms, 2m or 1h, got "${value}"`);
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? 's') as keyof typeof UNITS]);
}

/** A timeout option's value: a duration of at least 1 ms. */
export function timeoutMs(value: string): number {
  const ms = durationMs(value);
  if (ms < 1) throw new InvalidArgumentError(`must be at least 1ms, got "${value}"`);
  return ms;
}

/** A range: `<end>` or `<start>:<end>[:<step>]`, as Spark's `range`. */
export function range(value: string): { start: number; end: number; step: number } {
  const parts = value.split(':');
  const nums = parts.map((p) => Number(p));
  if (parts.length > 3 || parts.some((p) => !/^-?\d+$/.test(p.trim())) || nums.some((n) => !Number.isSafeInteger(n))) {
    throw new InvalidArgumentError(`must be <end> or <start>:<end>[:<step>] with whole numbers, got "${value}"`);
  }
  const [start, end, step] = parts.length === 1 ? [0, nums[0]!, 1] : [nums[0]!, nums[1]!, nums[2] ?? 1];
  if (step === 0) throw new InvalidArgumentError('step must not be 0');
  return { start, end, step };
}

/** A JSON value. */
export function json(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`is not JSON (${(err as Error).message})`);
  }
}

/** One `key=value` pair, collected into the record given by the earlier occurrences of the option. */
export function keyValue(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError(`must be key=value, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}
