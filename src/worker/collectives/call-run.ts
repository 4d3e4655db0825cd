/**
 * The life of one collective call once it has its number: a deadline on the injected clock, the
 * caller's abort signal, and the direct writes that must leave this process before the call may
 * return (they are views of the caller's arrays). Whatever ends the call first fails it, which
 * rejects every receive still waiting.
 */
import type { Clock } from '../../protocol/wait-for.js';
import type { Call } from './mailbox.js';

/** How {@link superviseCall} bounds a call. */
export interface CallBounds {
  clock: Clock;
  /** When the call times out, on `clock`. */
  deadline: number;
  signal?: AbortSignal | undefined;
  /** The error a timeout fails the call with (made when it fires, to name who is missing then). */
  timeoutError(): Error;
}

/**
 * Runs `work` for `call` until it settles or the call fails (deadline, signal, or a failure from
 * elsewhere such as a generation change), then waits for `flushes`. The timer and the signal's
 * listener are removed however the call ends.
 */
export async function superviseCall<T>(call: Call, bounds: CallBounds, work: () => Promise<T>, flushes: readonly Promise<void>[]): Promise<T> {
  const { clock, signal } = bounds;
  const timer = clock.setTimeout(() => call.fail(bounds.timeoutError()), Math.max(0, bounds.deadline - clock.now()));
  const onAbort = (): void => call.fail(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const running = work();
    running.catch(() => {});
    const result = await Promise.race([running, call.failed]);
    if (flushes.length) await Promise.race([Promise.all(flushes), call.failed]);
    return result;
  } catch (err) {
    call.fail(err);
    throw err;
  } finally {
    clock.clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
