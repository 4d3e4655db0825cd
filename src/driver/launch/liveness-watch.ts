import type { Readable } from 'node:stream';

/**
 * How long a new worker may take to send its first tick, on top of the hang timeout: starting
 * Node, importing the library and reading the environment happen before the worker can tick. A worker
 * that hangs while starting is still caught (later), and the start timeout bounds a first start.
 */
export const STARTUP_GRACE_MS = 30_000;

/** The reason reported for an attempt killed because it stopped ticking. */
export function hungError(hangTimeoutMs: number): string {
  return `hung: no liveness tick for ${hangTimeoutMs} ms`;
}

/** A running watch; {@link stop} it when the worker exits or its launcher stops. */
export interface LivenessWatch {
  stop(): void;
}

/**
 * Watches the read end of a worker's tick pipe: every byte pushes the deadline `hangTimeoutMs`
 * ahead; when the deadline passes, `onHung` runs once (the caller kills the worker). Before the
 * first byte the deadline is `hangTimeoutMs + startupGraceMs`. A pipe that closes is silent too:
 * the watch ends on {@link LivenessWatch.stop} only, which the caller calls when the worker exits.
 */
export function watchLiveness(ticks: Readable, hangTimeoutMs: number, onHung: () => void, startupGraceMs = STARTUP_GRACE_MS): LivenessWatch {
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  const arm = (ms: number): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      stop();
      onHung();
    }, ms);
    // The watch never keeps the launcher's process alive on its own.
    timer.unref();
  };
  const onData = (): void => {
    if (!done) arm(hangTimeoutMs);
  };
  const stop = (): void => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    ticks.off('data', onData);
    // Keep draining (and dropping) ticks so a worker that outlives the watch never fills the pipe.
    ticks.resume();
  };
  ticks.on('data', onData);
  // A broken pipe just means no more ticks; the deadline decides.
  ticks.on('error', () => {});
  arm(hangTimeoutMs + startupGraceMs);
  return { stop };
}
