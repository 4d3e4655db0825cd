/**
 * Waiting for a condition that changes on events (a membership view, acknowledgements, a message):
 * the one helper behind every wait of the library that has a timeout and an abort signal.
 */

/**
 * The pending checks of one changing state: its owner calls {@link Changes.notify} after each
 * change, and every wait on it looks at its condition again.
 */
export class Changes {
  private readonly checks = new Set<() => void>();

  /** Runs every pending check (a check that settles its wait leaves the set). */
  notify(): void {
    for (const check of [...this.checks]) check();
  }

  /** @internal */
  add(check: () => void): void {
    this.checks.add(check);
  }

  /** @internal */
  delete(check: () => void): void {
    this.checks.delete(check);
  }
}

/** Time as a wait sees it: the system's, or a test's that moves only when told. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The system's clock (timers of Node's event loop). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** How {@link waitFor} waits. */
export interface WaitForOptions<T> {
  /** Where the condition is looked at again: on each {@link Changes.notify}. Without it the condition is looked at once. */
  changes?: Changes;
  /** Ms until the wait ends with {@link WaitForOptions.onTimeout}; none: it waits until the condition holds or `signal` aborts. */
  timeoutMs?: number;
  /** Ends the wait with the signal's reason; an already aborted signal rejects at once. */
  signal?: AbortSignal;
  /** How a timeout ends the wait: an `Error` rejects with it, `{ value }` resolves with the value. Default: a plain timeout error. */
  onTimeout?: () => Error | { value: T };
  /** The timer does not keep the process alive. */
  unref?: boolean;
  /** Whose timers count the timeout (default: the system's). */
  clock?: Clock;
}

/**
 * Resolves with what `condition` returns once that is neither `undefined` nor `false`: at once when
 * it holds already, else at the first {@link Changes.notify} after which it does. A `condition`
 * that throws rejects the wait with its error. The timer and the signal's listener are removed
 * however the wait ends.
 */
export function waitFor<T>(condition: () => T | false | undefined, opts: WaitForOptions<T> = {}): Promise<T> {
  const { changes, timeoutMs, signal, onTimeout, clock = systemClock } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  let now: T | false | undefined;
  try {
    now = condition();
  } catch (err) {
    return Promise.reject(err as Error);
  }
  if (now !== undefined && now !== false) return Promise.resolve(now);
  return new Promise<T>((resolve, reject) => {
    let timer: unknown;
    const settle = (): void => {
      if (timer !== undefined) clock.clearTimeout(timer);
      changes?.delete(check);
      signal?.removeEventListener('abort', onAbort);
    };
    const check = (): void => {
      let value: T | false | undefined;
      try {
        value = condition();
      } catch (err) {
        settle();
        reject(err as Error);
        return;
      }
      if (value === undefined || value === false) return;
      settle();
      resolve(value);
    };
    const onAbort = (): void => {
      settle();
      reject(signal!.reason as Error);
    };
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      timer = clock.setTimeout(
        () => {
          settle();
          const end = onTimeout?.() ?? new Error(`the condition did not hold within ${timeoutMs} ms`);
          if (end instanceof Error) reject(end);
          else resolve(end.value);
        },
        Math.max(0, timeoutMs),
      );
      if (opts.unref) (timer as { unref?: () => void }).unref?.();
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    changes?.add(check);
  });
}
