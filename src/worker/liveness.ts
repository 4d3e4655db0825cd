/**
 * Worker side of liveness: one byte on fd `SPS_TICK_FD` every `SPS_TICK_MS`, written from the
 * event loop. Whoever started the worker (the embedded launcher, or the Spark task) watches the
 * other end of that pipe and kills a worker that stays silent for the run's hang timeout: a
 * blocked event loop (a handler in an endless loop) or a stopped process stops ticking by itself.
 * Executors never speak NATS, so liveness stays local between a worker and its launcher.
 */
import { write } from 'node:fs';
import { Socket } from 'node:net';

/** The shortest tick interval; a smaller `SPS_TICK_MS` (0 included) is raised to it. */
const MIN_TICK_MS = 10;
const TICK = Buffer.from([0x2e]);

/** A running ticker. */
export interface Ticker {
  /** Stops ticking and lets go of the fd. */
  stop(): void;
}

/**
 * Starts writing a tick to `fd` now and every `tickMs`. Neither the interval nor the fd keeps the
 * process alive. Writes never block: while the reader lags (the pipe is full) ticks are skipped,
 * and once the reader is gone (EPIPE, or any other write error) ticking stops for good.
 */
export function startTicking(fd: number, tickMs: number, log?: (...args: unknown[]) => void): Ticker {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let send: () => void;
  let release: () => void;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer) clearInterval(timer);
    timer = undefined;
    release();
  };
  const failed = (err: NodeJS.ErrnoException): void => {
    // EPIPE: the launcher closed its end (it is gone, or stopped watching); nobody to tell.
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') log?.(`liveness ticks on fd ${fd} stopped: ${err.message}`);
    stop();
  };
  try {
    // A pipe or socket: libuv puts the fd in non-blocking mode and writes from the event loop.
    const out = new Socket({ fd, readable: false, writable: true });
    out.unref();
    out.on('error', failed);
    send = () => {
      // A byte still queued means the pipe is full (EAGAIN): this tick is skipped, not piled up.
      if (!out.destroyed && out.writableLength === 0) out.write(TICK);
    };
    release = () => out.destroy();
  } catch {
    // Not a pipe (a file, a character device): plain writes, at most one in flight.
    let busy = false;
    send = () => {
      if (busy) return;
      busy = true;
      write(fd, TICK, (err) => {
        busy = false;
        if (err && err.code !== 'EAGAIN') failed(err);
      });
    };
    release = () => {};
  }
  send();
  timer = setInterval(
    () => {
      if (!stopped) send();
    },
    Math.max(MIN_TICK_MS, tickMs),
  );
  timer.unref();
  return { stop };
}
