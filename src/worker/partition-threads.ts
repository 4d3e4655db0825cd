import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { finished } from 'node:stream/promises';
import type { ThreadMessage } from './host-messages.js';

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

/** What starts one attempt's thread: its worker environment (no secret in it) and its secrets (for its port only). */
export interface ThreadStart {
  env: Record<string, string>;
  secrets: string;
  heapMb?: number;
}

/** Where one attempt's thread reports: its host relays each to the attempt's launcher. */
export interface ThreadSink {
  output(stream: 'stdout' | 'stderr', data: Uint8Array): void;
  result(data: Uint8Array): void;
  resultEnd(): void;
  tick(): void;
  /** The thread ended with `code` (its output was relayed first); `error` is what it threw, when it died of an uncaught error. */
  exit(code: number, error?: string): void;
}

/** An attempt waiting for its turn to start: the rows sent to it meanwhile, each with its `taken` callback. */
interface Queued {
  start: ThreadStart;
  sink: ThreadSink;
  rows: [Uint8Array, () => void][];
  rowsEnd: boolean;
}

/**
 * The threads of a partition host (option `isolation: 'thread'`), whoever drives it: the embedded
 * launcher over the host's IPC channel, or Spark tasks over its Unix socket. Each attempt runs as a
 * worker thread of `entry` (the worker entry); at most LOADING_AT_ONCE load at once, the rest
 * wait their turn (their sink hears a tick whenever a load ends, as their host made progress). A
 * thread's death is its own attempt's failure: threads serve HTTP with `node:http`, whose handles
 * Node closes with the thread.
 */
export class PartitionThreads {
  private readonly threads = new Map<number, Worker>();
  private readonly queued = new Map<number, Queued>();
  /** Threads that have not yet loaded their server (or ended). */
  private readonly loading = new Set<number>();

  constructor(private readonly entry: URL) {}

  /** How many attempts run or wait. */
  get size(): number {
    return this.threads.size + this.queued.size;
  }

  /** Starts (or queues) attempt `id`'s thread. */
  start(id: number, start: ThreadStart, sink: ThreadSink): void {
    this.queued.set(id, { start, sink, rows: [], rowsEnd: false });
    this.startNext();
  }

  /** Bytes of the attempt's row stream (the thread's `process.stdin`); `taken` once the thread took them (or ended). */
  rows(id: number, data: Uint8Array, taken: () => void): void {
    const waiting = this.queued.get(id);
    if (waiting) waiting.rows.push([data, taken]);
    else {
      const thread = this.threads.get(id);
      // The thread ended meanwhile: its exit is reported; rows for it are dropped.
      if (thread) takeRows(thread, data, taken);
      else taken();
    }
  }

  /** The end of the attempt's rows. */
  rowsEnd(id: number): void {
    const waiting = this.queued.get(id);
    if (waiting) waiting.rowsEnd = true;
    else this.threads.get(id)?.stdin!.end();
  }

  /** Ends the attempt's thread now (a hung one, or at stop); one still waiting exits with code 1. */
  kill(id: number): void {
    const waiting = this.queued.get(id);
    if (waiting) {
      this.queued.delete(id);
      waiting.sink.exit(1);
      return;
    }
    void this.threads.get(id)?.terminate();
  }

  /** Starts queued attempts while fewer than LOADING_AT_ONCE threads load. */
  private startNext(): void {
    for (const [id, q] of this.queued) {
      if (this.loading.size >= LOADING_AT_ONCE) break;
      this.queued.delete(id);
      const thread = this.startThread(id, q.start, q.sink);
      for (const [data, taken] of q.rows) takeRows(thread, data, taken);
      if (q.rowsEnd) thread.stdin!.end();
    }
    // A waiting attempt is as alive as its host, which just made progress: its launcher's
    // liveness watch must not take the wait for a hang.
    for (const q of this.queued.values()) q.sink.tick();
  }

  private loaded(id: number): void {
    if (this.loading.delete(id)) this.startNext();
  }

  private startThread(id: number, c: ThreadStart, sink: ThreadSink): Worker {
    const thread = new Worker(this.entry, {
      env: { ...process.env, ...c.env },
      stdin: true,
      stdout: true,
      stderr: true,
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, ...(c.heapMb ? { maxOldGenerationSizeMb: c.heapMb } : {}) },
    });
    this.threads.set(id, thread);
    this.loading.add(id);
    // The attempt's secrets go to this thread's port only, and are not kept here.
    thread.postMessage(c.secrets);
    // A thread that ended stops reading its rows; its exit says why.
    thread.stdin!.on('error', () => {});
    for (const stream of ['stdout', 'stderr'] as const) thread[stream].on('data', (data: Buffer) => sink.output(stream, data));
    thread.on('message', (m: ThreadMessage) => {
      if (m.t === 'tick') sink.tick();
      else if (m.t === 'result') sink.result(m.data);
      else if (m.t === 'loaded') this.loaded(id);
      else sink.resultEnd();
    });
    let error: string | undefined;
    thread.on('error', (err) => {
      error = `${err.name}: ${err.message}`;
    });
    thread.once('exit', (code) => {
      this.threads.delete(id);
      this.loaded(id);
      // Its last output lines explain a failure: wait for them to be relayed first.
      const output = Promise.all([finished(thread.stdout).catch(() => {}), finished(thread.stderr).catch(() => {})]);
      const grace = new Promise((r) => setTimeout(r, OUTPUT_GRACE_MS).unref());
      void Promise.race([output, grace]).then(() => sink.exit(code, error));
    });
    return thread;
  }
}

/** Writes rows to a thread's stdin; `taken` once it took them (one write in flight). */
function takeRows(thread: Worker, data: Uint8Array, taken: () => void): void {
  if (thread.stdin!.write(data)) taken();
  else thread.stdin!.once('drain', taken);
}
