import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { finished } from 'node:stream/promises';
import type { HostCommand, HostReport, ThreadMessage } from './host-messages.js';
import { DEFAULT_HEARTBEAT_MS, WORKER_ENV } from './worker-env.js';

/** How long a thread's output may still arrive after it ended before its exit is reported anyway. */
const OUTPUT_GRACE_MS = 2000;
/**
 * How many threads load their modules at once. Loading is CPU work: more threads at once only
 * share the same cores, so each takes longer, and on a loaded machine some missed their connect
 * timeout or their liveness deadline; the rest wait their turn.
 */
const LOADING_AT_ONCE = Math.max(2, availableParallelism());
/**
 * Each thread's young generation in MB: the default sizes it for throughput, which multiplies
 * by the number of threads in one host's memory.
 */
const YOUNG_GENERATION_MB = 4;
/** The shortest heartbeat interval, as for a thread's ticks. */
const MIN_TICK_MS = 10;

type StartCommand = Extract<HostCommand, { t: 'start' }>;

/** An attempt waiting for its turn to start: the rows sent to it meanwhile (one write in flight). */
interface Queued {
  start: StartCommand;
  rows: Uint8Array[];
  rowsEnd: boolean;
}

/**
 * The partition host process of option `isolation: 'thread'`: runs the attempts its launcher
 * starts as worker threads of `entry` (the worker entry), relays their rows, output, results and
 * liveness ticks over its IPC channel, and reports each thread's end. A thread's death is its own
 * attempt's failure: threads serve HTTP with `node:http`, whose handles Node closes with the
 * thread (uWebSockets.js handles would abort the process). When the launcher goes (the channel
 * closes) the host ends, and its threads with it.
 */
export function runPartitionHost(entry: URL): void {
  const threads = new Map<number, Worker>();
  const queued = new Map<number, Queued>();
  // Threads that have not yet loaded their server (or ended).
  const loading = new Set<number>();
  const send = (r: HostReport): void => {
    if (process.connected) process.send!(r);
  };
  const takeRows = (thread: Worker, id: number, data: Uint8Array): void => {
    if (thread.stdin!.write(data)) send({ t: 'rowsTaken', id });
    else thread.stdin!.once('drain', () => send({ t: 'rowsTaken', id }));
  };
  /** Starts queued attempts while fewer than LOADING_AT_ONCE threads load. */
  const startNext = (): void => {
    for (const [id, q] of queued) {
      if (loading.size >= LOADING_AT_ONCE) break;
      queued.delete(id);
      const thread = startThread(q.start);
      for (const data of q.rows) takeRows(thread, id, data);
      if (q.rowsEnd) thread.stdin!.end();
    }
    // A waiting attempt is as alive as its host, which just made progress: its launcher's
    // liveness watch must not take the wait for a hang.
    for (const id of queued.keys()) send({ t: 'tick', id });
  };
  const loaded = (id: number): void => {
    if (loading.delete(id)) startNext();
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
    if (c.t === 'start') {
      if (!heartbeat) startHeartbeat(Number(c.env[WORKER_ENV.tickMs]) || DEFAULT_HEARTBEAT_MS);
      queued.set(c.id, { start: c, rows: [], rowsEnd: false });
      startNext();
      return;
    }
    const waiting = queued.get(c.id);
    if (waiting) {
      if (c.t === 'rows') waiting.rows.push(c.data);
      else if (c.t === 'rowsEnd') waiting.rowsEnd = true;
      else {
        queued.delete(c.id);
        send({ t: 'exit', id: c.id, code: 1 });
      }
      return;
    }
    const thread = threads.get(c.id);
    if (!thread) {
      // The thread ended meanwhile: its exit is reported; rows for it are dropped.
      if (c.t === 'rows') send({ t: 'rowsTaken', id: c.id });
    } else if (c.t === 'rows') takeRows(thread, c.id, c.data);
    else if (c.t === 'rowsEnd') thread.stdin!.end();
    else void thread.terminate();
  });

  function startThread(c: StartCommand): Worker {
    const { id } = c;
    const thread = new Worker(entry, {
      env: { ...process.env, ...c.env },
      stdin: true,
      stdout: true,
      stderr: true,
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, ...(c.heapMb ? { maxOldGenerationSizeMb: c.heapMb } : {}) },
    });
    threads.set(id, thread);
    loading.add(id);
    // The attempt's secrets go to this thread's port only, and are not kept here.
    thread.postMessage(c.secrets);
    // A thread that ended stops reading its rows; its exit says why.
    thread.stdin!.on('error', () => {});
    for (const stream of ['stdout', 'stderr'] as const) thread[stream].on('data', (data: Buffer) => send({ t: 'output', id, stream, data }));
    thread.on('message', (m: ThreadMessage) => {
      if (m.t === 'tick') send({ t: 'tick', id });
      else if (m.t === 'result') send({ t: 'result', id, data: m.data });
      else if (m.t === 'loaded') loaded(id);
      else send({ t: 'resultEnd', id });
    });
    let error: string | undefined;
    thread.on('error', (err) => {
      error = `${err.name}: ${err.message}`;
    });
    thread.once('exit', (code) => {
      threads.delete(id);
      loaded(id);
      // Its last output lines explain a failure: wait for them to be relayed first.
      const output = Promise.all([finished(thread.stdout).catch(() => {}), finished(thread.stderr).catch(() => {})]);
      const grace = new Promise((r) => setTimeout(r, OUTPUT_GRACE_MS).unref());
      void Promise.race([output, grace]).then(() => send({ t: 'exit', id, code, ...(error ? { error } : {}) }));
    });
    return thread;
  }
}
