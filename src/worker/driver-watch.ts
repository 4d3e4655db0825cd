import type { Subscription } from '@nats-io/nats-core';
import { decode } from '../protocol/codec.js';
import type { WireError } from '../protocol/types.js';
import type { NatsConnection } from '../transport/bus.js';

/** Watches the driver's heartbeat; see {@link watchDriver}. */
export interface DriverWatch {
  /** Starts counting silence (from now); call it once the partition is registered. */
  start(): void;
  /** Stops watching: no more `onLost`, and the subscription goes. */
  stop(): void;
}

/**
 * Watches the driver's heartbeat broadcast on `subject`. Once started, a silence of `timeoutMs`
 * calls `onLost` (once) with an `SPS_DRIVER_LOST` error: the driver's host is gone, frozen or cut
 * off, and nothing will ever shut this partition down, so it should leave rather than linger.
 * Subscribes at once, so no beat sent after the partition registers is missed; only started
 * counts, because registering may legitimately take longer than the timeout (a slow init).
 * Messages that are not heartbeats are counted with `onMalformed` and do not count as beats.
 */
export function watchDriver(nc: NatsConnection, subject: string, timeoutMs: number, onLost: (error: WireError) => void, onMalformed: () => void): DriverWatch {
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  const unsubscribe = (): void => {
    try {
      sub.unsubscribe();
    } catch {
      // The connection is already closed: nothing left to unsubscribe from.
    }
  };
  const lost = (): void => {
    if (done) return;
    done = true;
    unsubscribe();
    onLost({
      code: 'SPS_DRIVER_LOST',
      message: `no heartbeat from the driver for ${timeoutMs} ms (driverTimeoutMs); it is gone or cut off, so this partition leaves`,
    });
  };
  const sub: Subscription = nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err || done) return;
      try {
        decode(msg.subject, msg.data, ['heartbeat']);
      } catch {
        onMalformed();
        return;
      }
      // refresh() restarts the same timer: no allocation per beat.
      timer?.refresh();
    },
  });
  return {
    start: () => {
      if (done || timer) return;
      timer = setTimeout(lost, timeoutMs);
      // The NATS connection keeps the process alive while it serves; this timer must not on its own.
      timer.unref();
    },
    stop: () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
    },
  };
}
