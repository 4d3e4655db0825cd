/**
 * The messages of option `isolation: 'thread'`: between the driver's embedded launcher and a
 * partition host process (over the host's IPC channel, a private socket pair), and between the
 * host and one partition thread (over the thread's own MessagePort). `id` names one attempt's
 * thread within its host; it is a handle, never an identity: a partition's identity comes from
 * the credentials it receives.
 */

/** `1` makes the worker entry a partition host process (its value in `WORKER_ENV.partitionHost`). */
export const PARTITION_HOST_ENV = 'SPS_PARTITION_HOST';

/** What the launcher tells a partition host. */
export type HostCommand =
  /** Start an attempt's thread with this worker environment (no secret in it); `secrets` go to the thread's port only. */
  | { t: 'start'; id: number; env: Record<string, string>; secrets: string; heapMb?: number }
  /** Bytes of the attempt's row stream (its `process.stdin`); answered by `rowsTaken` once the thread took them. */
  | { t: 'rows'; id: number; data: Uint8Array }
  /** The end of the attempt's rows. */
  | { t: 'rowsEnd'; id: number }
  /** End the attempt's thread now (a hung one, or at stop). */
  | { t: 'kill'; id: number };

/** What a partition host tells the launcher. */
export type HostReport =
  /** The host's own event loop ran: its heartbeat, every tick interval, sent after the ticks its threads posted before it. */
  | { t: 'alive' }
  | { t: 'tick'; id: number }
  | { t: 'rowsTaken'; id: number }
  | { t: 'result'; id: number; data: Uint8Array }
  | { t: 'resultEnd'; id: number }
  | { t: 'output'; id: number; stream: 'stdout' | 'stderr'; data: Uint8Array }
  /** The thread ended with `code`; `error` is what it threw, when it died of an uncaught error. */
  | { t: 'exit'; id: number; code: number; error?: string };

/** What a partition thread posts to its host. */
export type ThreadMessage =
  | { t: 'tick' }
  | { t: 'result'; data: Uint8Array }
  | { t: 'resultEnd' }
  /** The thread loaded its server's modules: the host may start the next waiting thread. */
  | { t: 'loaded' };
