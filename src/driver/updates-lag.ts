/**
 * How far behind each partition is in the run's live updates, as the stream itself counts it
 * (its consumer's undelivered and unacknowledged updates): what the dashboard shows. Read by the
 * driver from JetStream, so a partition that hangs or lies cannot hide its lag.
 */
import { jetstreamManager, JetStreamApiError } from '@nats-io/jetstream';
import type { NatsConnection } from '../transport/bus.js';
import { updatesConsumer, type UpdatesPlan } from '../protocol/updates.js';

/** One partition's standing in the stream. */
export interface UpdatesLag {
  /** Updates of its partition stored but not yet applied (or dead-lettered) by its current attempt. */
  pending: number;
  /** The stream sequence up to which everything of its partition was applied. */
  appliedSeq: number;
}

/**
 * Reads every partition's lag each `intervalMs` and hands it to `report`; a partition whose
 * attempt has no consumer yet (starting, or replaced) is skipped until it has one.
 */
export function watchUpdatesLag(
  nc: NatsConnection,
  plan: UpdatesPlan,
  partitions: number,
  intervalMs: number,
  report: (partition: number, lag: UpdatesLag) => void,
): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    for (let p = 0; p < partitions && !stopped && !nc.isClosed(); p++) {
      try {
        const info = await jsm.consumers.info(plan.stream, updatesConsumer(p));
        report(p, { pending: info.num_pending + info.num_ack_pending, appliedSeq: info.ack_floor.stream_seq });
      } catch (err) {
        if (!(err instanceof JetStreamApiError)) throw err;
      }
    }
  };
  const loop = (): void => {
    if (stopped) return;
    // One read after another, never overlapping: a slow server gets fewer reads, not more.
    tick()
      .catch(() => {})
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, intervalMs).unref();
      });
  };
  loop();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
