import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { WORKER_ENV } from '../../worker/worker-env.js';
import type { HostCommand, HostReport } from '../../worker/host-messages.js';
import type { WorkerProgram } from './worker-command.js';
import { forEachLine } from '../../process/output-lines.js';
import { logWorkerLine, type Logger } from '../../log/logger.js';
import { stopProcess } from '../../process/stop-process.js';
import { STARTUP_GRACE_MS, hungError, watchLiveness, type LivenessWatch } from './liveness-watch.js';
import { threadSilenceIsOwn } from './thread-liveness.js';

/**
 * What the embedded launcher holds of one running attempt: a worker process, or a thread of a
 * partition host with the same shape (stdin for rows; stdout and stderr; stdio 3 its result
 * channel, stdio 4 its liveness ticks).
 */
export interface AttemptProcess {
  readonly pid?: number;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly stdio: readonly unknown[];
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'close' | 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  /** Whether the silence of its ticks is its own: absent for a process, whose silence always is. */
  silenceIsOwn?(): boolean;
}

/** One attempt run as a thread of a {@link ThreadHost}, seen as a process. */
class HostedThread extends EventEmitter implements AttemptProcess {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly results = new PassThrough();
  readonly ticks = new PassThrough();
  readonly stdin: Writable;
  readonly stdio: readonly unknown[];
  /** The callback of the rows the host has not taken yet (one write in flight). */
  rowsTaken?: (err?: Error | null) => void;
  /** When its last tick was read (before the first: its start deadline, less the hang timeout). */
  lastTickAt = performance.now() + STARTUP_GRACE_MS;
  private killedBy?: NodeJS.Signals;

  constructor(
    readonly id: number,
    readonly pid: number | undefined,
    private readonly command: (c: HostCommand) => void,
    /** Whether a thread silent since a time stayed silent while its host reported. */
    private readonly hostOutlived: (since: number) => boolean,
  ) {
    super();
    this.stdin = new Writable({
      write: (data: Buffer, _encoding, done) => {
        this.rowsTaken = done;
        command({ t: 'rows', id, data });
      },
      final: (done) => {
        command({ t: 'rowsEnd', id });
        done();
      },
    });
    this.stdio = [this.stdin, this.stdout, this.stderr, this.results, this.ticks];
  }

  silenceIsOwn(): boolean {
    return this.hostOutlived(this.lastTickAt);
  }

  get ended(): boolean {
    return this.exitCode !== null || this.signalCode !== null;
  }

  /** Ends the thread; the signal is only what its exit is reported as (a thread has no signals). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.ended) return false;
    this.killedBy ??= signal;
    this.command({ t: 'kill', id: this.id });
    return true;
  }

  /** The thread ended (or its host did): `why` becomes its last output line. */
  end(code: number | null, signal: NodeJS.Signals | null, why?: string): void {
    if (this.ended) return;
    if (why) this.stderr.write(`${why}\n`);
    signal ??= this.killedBy ?? null;
    this.exitCode = signal ? null : (code ?? 1);
    this.signalCode = signal;
    const taken = this.rowsTaken;
    this.rowsTaken = undefined;
    taken?.(new Error('the partition thread ended'));
    for (const s of [this.stdout, this.stderr, this.results, this.ticks]) s.end();
    this.emit('exit', this.exitCode, signal);
    // As for a process: `close` once its output streams have been read to their end.
    setImmediate(() => this.emit('close', this.exitCode, signal));
  }
}

/**
 * The driver's side of a partition host process (option `isolation: 'thread'`): one Node process
 * that runs attempts as its threads. The host is the worker entry started with
 * `SPS_PARTITION_HOST=1`; it is reached over its IPC channel, a private socket pair, which carries
 * each attempt's secrets to the host (never argv or an environment), and from there to that
 * attempt's thread alone. The host's death ends every attempt it ran, each as a failed attempt.
 */
export class ThreadHost {
  private readonly child: ChildProcess;
  private readonly threads = new Map<number, HostedThread>();
  private nextId = 0;
  private exited = false;
  /** When the host's last heartbeat was read; they come on the channel that carries its threads' ticks. */
  private heardAt = performance.now();
  /** The host's heartbeats, as a tick pipe for its own watch. */
  private readonly heartbeats = new PassThrough();
  private readonly watch: LivenessWatch;

  /**
   * @param hangTimeoutMs how long a thread, or the whole host, may be silent: a thread is hung when
   * it was silent that long while its host kept reporting; the host is hung (and killed, failing
   * its threads) when it was silent that long itself, as a worker process would be.
   */
  constructor(
    program: WorkerProgram,
    logger: Logger,
    private readonly hangTimeoutMs: number,
  ) {
    this.child = spawn(program.command, program.args, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      // Its own process group, as a worker process: a Ctrl-C reaches the driver only.
      detached: true,
      env: { ...process.env, [WORKER_ENV.partitionHost]: '1' },
    });
    const hostLogger = logger.child({ component: `partition host ${this.child.pid}` });
    this.watch = watchLiveness(this.heartbeats, hangTimeoutMs, () => {
      if (this.exited) return;
      hostLogger.warn(`${hungError(hangTimeoutMs)}; killing the partition host`);
      this.child.kill('SIGKILL');
    });
    forEachLine([this.child.stdout!, this.child.stderr!], (line) => logWorkerLine(hostLogger, line));
    this.child.on('message', (r: HostReport) => this.report(r));
    this.child.once('error', (err) => this.ended(null, null, `could not start: ${err.message}`));
    this.child.once('exit', (code, signal) => this.ended(code, signal, signal ? `was killed by ${signal}` : `exited with code ${code}`));
  }

  /** The host's pid. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** False once the host process is gone: a new attempt needs a new host. */
  get alive(): boolean {
    return !this.exited;
  }

  /** Starts an attempt's thread with its worker environment and its secrets (for its port only). */
  start(env: Record<string, string>, secrets: string, heapMb?: number): AttemptProcess {
    const id = this.nextId++;
    const thread = new HostedThread(
      id,
      this.child.pid,
      (c) => this.command(c),
      (since) => threadSilenceIsOwn(since, this.heardAt, this.hangTimeoutMs),
    );
    this.threads.set(id, thread);
    this.command({ t: 'start', id, env, secrets, ...(heapMb ? { heapMb } : {}) });
    return thread;
  }

  /** Ends the host: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    await stopProcess(this.child, graceMs);
  }

  /** Kills the host at once (synchronous, for an `exit` hook). */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private command(c: HostCommand): void {
    // A host that is gone ends its threads by its exit.
    if (this.exited || !this.child.connected) return;
    this.child.send(c, (err) => {
      if (err) this.threads.get(c.id)?.end(1, null, `failed: cannot reach the partition host: ${err.message}`);
    });
  }

  private report(r: HostReport): void {
    if (r.t === 'alive') {
      this.heardAt = performance.now();
      this.heartbeats.write('.');
      return;
    }
    const thread = this.threads.get(r.id);
    if (!thread) return;
    switch (r.t) {
      case 'tick':
        thread.lastTickAt = performance.now();
        thread.ticks.write('.');
        break;
      case 'rowsTaken': {
        const taken = thread.rowsTaken;
        thread.rowsTaken = undefined;
        taken?.();
        break;
      }
      case 'result':
        thread.results.write(r.data);
        break;
      case 'resultEnd':
        thread.results.end();
        break;
      case 'output':
        (r.stream === 'stdout' ? thread.stdout : thread.stderr).write(r.data);
        break;
      case 'exit':
        this.threads.delete(r.id);
        thread.end(r.code, null, r.error ? `failed: the partition thread died: ${r.error}` : undefined);
        break;
    }
  }

  private ended(code: number | null, signal: NodeJS.Signals | null, how: string): void {
    if (this.exited) return;
    this.exited = true;
    this.watch.stop();
    for (const thread of this.threads.values()) thread.end(code === 0 ? 1 : code, signal, `failed: its partition host ${this.child.pid} ${how}`);
    this.threads.clear();
  }
}
