import type { HostCommand, HostReport } from './host-messages.js';
import { PartitionThreads } from './partition-threads.js';
import { DEFAULT_HEARTBEAT_MS, WORKER_ENV } from './worker-env.js';

/** The shortest heartbeat interval, as for a thread's ticks. */
const MIN_TICK_MS = 10;

/**
 * The partition host process of option `isolation: 'thread'` on the embedded launcher: runs the
 * attempts its launcher starts as worker threads of `entry` (the worker entry; see
 * {@link PartitionThreads}), relays their rows, output, results and liveness ticks over its IPC
 * channel, and reports each thread's end. When the launcher goes (the channel closes) the host
 * ends, and its threads with it.
 */
export function runPartitionHost(entry: URL): void {
  const threads = new PartitionThreads(entry);
  const send = (r: HostReport): void => {
    if (process.connected) process.send!(r);
  };

  /**
   * The host's heartbeat, which lets its launcher tell a thread's own silence from a gap the whole
   * host shared. Sent from the check phase: after a stall, the ticks its threads posted meanwhile
   * (read in the poll phase before it) are relayed first, so they never look older than it.
   */
  let heartbeat: NodeJS.Timeout | undefined;
  const startHeartbeat = (tickMs: number): void => {
    heartbeat = setInterval(() => setImmediate(() => send({ t: 'alive' })), Math.max(MIN_TICK_MS, tickMs));
    heartbeat.unref();
  };

  process.on('disconnect', () => process.exit(1));
  process.on('message', (c: HostCommand) => {
    const { id } = c;
    if (c.t === 'start') {
      if (!heartbeat) startHeartbeat(Number(c.env[WORKER_ENV.tickMs]) || DEFAULT_HEARTBEAT_MS);
      threads.start(id, c, {
        output: (stream, data) => send({ t: 'output', id, stream, data }),
        result: (data) => send({ t: 'result', id, data }),
        resultEnd: () => send({ t: 'resultEnd', id }),
        tick: () => send({ t: 'tick', id }),
        exit: (code, error) => send({ t: 'exit', id, code, ...(error ? { error } : {}) }),
      });
    } else if (c.t === 'rows') threads.rows(id, c.data, () => send({ t: 'rowsTaken', id }));
    else if (c.t === 'rowsEnd') threads.rowsEnd(id);
    else threads.kill(id);
  });
}
