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

/**
 * With {@link PARTITION_HOST_ENV}: the Unix socket a partition host of Spark tasks listens on
 * (the host then serves tasks over it instead of an IPC channel; see `socket-host.ts`).
 */
export const HOST_SOCKET_ENV = 'SPS_HOST_SOCKET';
/**
 * With {@link HOST_SOCKET_ENV}: the file the socket host's own output is appended to (by whoever
 * started it), which it removes when it leaves idle; a host that died leaves it, and its tasks show
 * its last lines.
 */
export const HOST_LOG_ENV = 'SPS_HOST_LOG';
/** How long a socket host stays without attempts before it exits, in ms (default 10 s). */
export const HOST_IDLE_ENV = 'SPS_HOST_IDLE_MS';

/**
 * What a Spark task sends a socket host, one JSON object a line: `start` first (its attempt's
 * worker environment, the FIFOs of its channels, and its secrets, for its thread's port only),
 * then at most `kill`. The socket closing from the task's side ends its thread too.
 */
export type SocketCommand =
  | {
      t: 'start';
      env: Record<string, string>;
      secrets: string;
      heapMb?: number;
      /** FIFOs the task made: rows to the thread, its output lines, its result frames, its liveness ticks. */
      fifos: { rows: string; output: string; results: string; ticks: string };
    }
  | { t: 'kill' };

/** What a socket host answers, one JSON object a line: `started` once it holds the FIFOs, then `exit`. */
export type SocketReport = { t: 'started'; pid: number } | { t: 'exit'; code: number; error?: string };
