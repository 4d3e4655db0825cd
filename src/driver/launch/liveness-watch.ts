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

/** How a {@link watchLiveness} judges a silence. */
export interface LivenessOptions {
  /** Extra time for the first tick (default {@link STARTUP_GRACE_MS}). */
  startupGraceMs?: number;
  /**
   * Whether a silence that reached the deadline is the worker's own (default: always). When it
   * is not (its host was silent too), the watch asks again a fraction of the timeout later.
   */
  silenceIsOwn?: () => boolean;
}

/**
 * Watches the read end of a worker's tick pipe: every byte pushes the deadline `hangTimeoutMs`
 * ahead; when the deadline passes and the silence is the worker's own, `onHung` runs once (the
 * caller kills the worker). Before the first byte the deadline is `hangTimeoutMs + startupGraceMs`.
 * A pipe that closes is silent too: the watch ends on {@link LivenessWatch.stop} only, which the
 * caller calls when the worker exits.
 */
export function watchLiveness(ticks: Readable, hangTimeoutMs: number, onHung: () => void, opts: LivenessOptions = {}): LivenessWatch {
  const { startupGraceMs = STARTUP_GRACE_MS, silenceIsOwn = () => true } = opts;
  let timer: NodeJS.Timeout | undefined;
  let armed = 0;
  let done = false;
  const judge = (which: number): void => {
    // A tick read meanwhile armed a newer deadline.
    if (done || which !== armed) return;
    if (!silenceIsOwn()) return arm(Math.max(1, Math.floor(hangTimeoutMs / 4)));
    stop();
    onHung();
  };
  const arm = (ms: number): void => {
    if (timer) clearTimeout(timer);
    const which = ++armed;
    // Judged after the loop's next poll for I/O: when this process was itself stalled past the
    // deadline, the ticks that wait to be read arrive first and are not taken for silence.
    timer = setTimeout(() => setImmediate(() => judge(which)), ms);
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
