/**
 * The run's private nats-server kept up by the driver: when its process exits unexpectedly, the
 * driver starts it again on the same port, configuration and JetStream store, so the workers', the
 * runner's and the driver's connections reconnect within their reconnect window and the updates
 * stream and its consumers are where they were. Only the exit of the driver's own child starts it
 * again, never a message. A server that keeps dying is given up, and the run fails naming it.
 */
import type { NatsServerProcess } from '../transport/nats-server.js';

/** At most this many restarts within `windowMs`: the next exit within the window is the last. */
export const NATS_RESTARTS = { max: 3, windowMs: 60_000 };

/** A private nats-server the driver keeps up. */
export interface KeptNatsServer {
  /** Resolves with why, once the server is gone for good (it kept dying, or did not start again); never after stop(). */
  lost: Promise<string>;
  /** Stops restarting it, waits for a restart under way, then stops the server. */
  stop(): Promise<void>;
}

/**
 * Watches `nats`'s process and starts it again whenever it exits before stop(), up to
 * `limits.max` times within `limits.windowMs`; `log` is told of every restart.
 */
export function keepNatsServerUp(nats: NatsServerProcess, log: (line: string) => void, limits = NATS_RESTARTS): KeptNatsServer {
  let stopping = false;
  let restarting: Promise<void> = Promise.resolve();
  const exits: number[] = [];
  const lost = new Promise<string>((resolve) => {
    const watch = (): void => {
      const pid = nats.pid;
      void nats.exited.then(async (how) => {
        if (stopping) return;
        const now = Date.now();
        exits.push(now);
        while (exits[0]! <= now - limits.windowMs) exits.shift();
        const what = `the run's nats-server (pid ${pid}) exited with ${how}`;
        if (exits.length > limits.max) {
          resolve(`${what}, its exit ${exits.length} within ${limits.windowMs / 1000} s: started again ${limits.max} times, given up`);
          return;
        }
        restarting = nats.restart();
        try {
          await restarting;
        } catch (err) {
          if (!stopping) resolve(`${what} and could not be started again: ${(err as Error).message}`);
          return;
        }
        if (stopping) return;
        log(
          `${what}; started again on port ${nats.port} with the same configuration and store (pid ${nats.pid}, restart ${exits.length} of at most ${limits.max} within ${limits.windowMs / 1000} s)`,
        );
        watch();
      });
    };
    watch();
  });
  return {
    lost,
    stop: async () => {
      stopping = true;
      await restarting.catch(() => {});
      await nats.stop();
    },
  };
}
