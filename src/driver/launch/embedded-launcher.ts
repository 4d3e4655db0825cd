import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { readResultChannel, waitDrained, writeFrame } from '../../transport/frames.js';
import type { LongMode } from '../../worker/arrow-rows.js';
import { stopProcess } from '../../process/stop-process.js';
import { sharedWorkerEnv, workerSecrets, type LaunchEvents, type LaunchPlan, type Launcher } from './launcher.js';
import type { PartitionedSource } from './data-source.js';
import { WORKER_ENV } from '../../worker/worker-env.js';
import { forEachLine } from '../../process/output-lines.js';
import { lineText, logWorkerLine, type Logger } from '../../log/logger.js';
import { hungError, watchLiveness, type LivenessWatch } from './liveness-watch.js';
import type { FailureReport } from '../../protocol/types.js';
import { ThreadHost, type AttemptProcess } from './thread-host.js';

/** Rows per frame on a worker's stdin. */
const ROW_BATCH = 4096;
/** How many of a worker's last output lines are kept to explain a failure. */
const TAIL_LINES = 20;
/** The child's fd of its result channel, of its liveness ticks, and of its secrets (read once). */
const RESULT_FD = 3;
const TICK_FD = 4;
const SECRET_FD = 5;

interface Task {
  partition: number;
  attempt: number;
  /** Its worker process, or its thread (option `isolation: 'thread'`). */
  child: AttemptProcess;
  /** The last lines of its output (records as their message), to explain a failure. */
  tail: string[];
  /** The run's logger, bound to this attempt. */
  logger: Logger;
  /** Kills the child when its liveness ticks stop for the hang timeout. */
  watch?: LivenessWatch;
  /** Set when the watch killed the child: the attempt failed as hung. */
  hung?: string;
}

/** Explains a failed attempt: by the worker's own report when it wrote one, else by the line that best explains it among its last output lines. */
function explain(tail: string[], code: number | null, signal: NodeJS.Signals | null, failure?: FailureReport): string {
  const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
  if (failure) return `${how}: [${failure.code}] ${failure.message}`;
  const reason = ([...tail].reverse().find((l) => /(^| )failed: /.test(l)) ?? tail.at(-1))?.split('\n')[0];
  return reason ? `${how}: ${reason.replace(/^\[sps [^\]]*\]\s*/, '').replace(/^failed: /, '')}` : how;
}

/**
 * Runs each partition as a child process on this machine, like Spark tasks: a process that dies
 * or exits non-zero is relaunched with the next attempt number until `maxFailures` attempts failed.
 * A child whose liveness ticks (fd 4) stop for `hangTimeoutMs` is hung: it is killed and fails
 * its attempt the same way. With `isolation: 'thread'` each attempt is a thread of one partition
 * host process instead (see `thread-host.ts`), failing and retried the same way; a host that dies
 * fails every attempt it ran, and the next attempt starts a new host.
 */
export class EmbeddedLauncher implements Launcher {
  readonly kind = 'embedded';
  private readonly tasks = new Map<number, Task>();
  private stopping = false;
  private host?: ThreadHost;

  constructor(private readonly source: PartitionedSource) {}

  async launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    this.stopping = false;
    const failures = new Map<number, number>();
    const start = (partition: number, attempt: number): void => {
      const task = this.spawnTask(plan, partition, attempt);
      this.tasks.set(partition, task);
      const results: unknown[] = [];
      const reading = this.readResults(task.child.stdio[RESULT_FD] as Readable, results, partition, attempt, plan.longs ?? 'number');
      task.child.once('close', (code, signal) => {
        void reading.then(({ error: resultError, failure }) => {
          if (this.tasks.get(partition) === task) this.tasks.delete(partition);
          if (code === 0 && !resultError && !failure && !task.hung) {
            events.result(partition, attempt, results);
            return;
          }
          // A crash says more in its exit and output (or its own report) than in the result channel it cut short.
          const error = task.hung ?? (code === 0 && !failure ? resultError : undefined) ?? explain(task.tail, code, signal, failure);
          events.attemptFailed(partition, attempt, error, failure);
          if (this.stopping) return;
          task.logger.warn(`attempt failed: ${error.split('\n')[0]}`);
          // The supervisor fails the partition at once: relaunching would fail the same way.
          if (failure?.retryable === false) return;
          const failed = (failures.get(partition) ?? 0) + 1;
          failures.set(partition, failed);
          if (failed >= plan.maxFailures) events.gaveUp(partition, failed, error);
          else start(partition, attempt + 1);
        });
      });
    };
    for (let p = 0; p < plan.partitions; p++) start(p, 0);
  }

  /** Starts an attempt: a worker process, or a thread of the partition host. */
  private startAttempt(plan: LaunchPlan, partition: number, attempt: number): AttemptProcess {
    const env = {
      ...sharedWorkerEnv(plan),
      [WORKER_ENV.partition]: String(partition),
      [WORKER_ENV.attempt]: String(attempt),
      [WORKER_ENV.rowFormat]: this.source.rowFormat,
      [WORKER_ENV.resultFd]: String(RESULT_FD),
      [WORKER_ENV.resultFormat]: 'msgpack',
      [WORKER_ENV.tickFd]: String(TICK_FD),
      [WORKER_ENV.secretFd]: String(SECRET_FD),
    };
    if (plan.isolation === 'thread') {
      if (!this.host?.alive) this.host = new ThreadHost(plan.worker, plan.logger.child({ cluster: plan.clusterId }), plan.hangTimeoutMs);
      return this.host.start(env, workerSecrets(plan, partition, attempt), plan.threadHeapMb);
    }
    const { command, args } = plan.worker;
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C in the driver's terminal must reach the driver only, which
      // then drains every partition; a worker outlives no driver (its tick pipe closes).
      detached: true,
      env: { ...process.env, ...env },
    });
    // The attempt's secrets, on a pipe only this child holds: an environment stays readable in
    // /proc/<pid>/environ for the process's whole life, and is inherited by what it spawns.
    const secrets = (child.stdio as unknown[])[SECRET_FD] as Writable | null;
    if (secrets) {
      // A child that dies before reading them is reported by its exit.
      secrets.on('error', () => {});
      secrets.end(workerSecrets(plan, partition, attempt));
    }
    return child;
  }

  private spawnTask(plan: LaunchPlan, partition: number, attempt: number): Task {
    const child = this.startAttempt(plan, partition, attempt);
    const task: Task = { partition, attempt, child, tail: [], logger: plan.logger.child({ cluster: plan.clusterId, partition, attempt }) };
    if (child.pid !== undefined) {
      // Only this child, by its own handle: a hung worker gets SIGKILL (a blocked event loop never
      // runs a SIGTERM handler, and a stopped process would not act on it).
      // A thread's silence counts only when its host kept reporting meanwhile (see thread-liveness.ts).
      const silenceIsOwn = child.silenceIsOwn?.bind(child);
      task.watch = watchLiveness(
        child.stdio[TICK_FD] as Readable,
        plan.hangTimeoutMs,
        () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          task.hung = hungError(plan.hangTimeoutMs);
          task.logger.warn(`${task.hung}; killing worker ${child.pid}`);
          child.kill('SIGKILL');
        },
        silenceIsOwn ? { silenceIsOwn } : {},
      );
      child.once('exit', () => task.watch?.stop());
    }
    const onLine = (line: string): void => {
      task.tail.push(lineText(line));
      if (task.tail.length > TAIL_LINES) task.tail.shift();
      logWorkerLine(task.logger, line);
    };
    forEachLine([child.stdout!, child.stderr!], onLine);
    // A worker that fails or stops reading closes stdin early; that is reported by its exit, not here.
    child.stdin!.on('error', () => {});
    const fail = (message: string): void => {
      task.tail.push(message);
      task.logger.error(message);
    };
    child.once('error', (err) => fail(`failed: could not start worker: ${err.message}`));
    // A worker that dies while being fed is reported by its exit; the feed just stops.
    const feeding =
      this.source.rowFormat === 'arrow' ? this.feedBytes(child, this.source.arrowSlice(partition)) : this.feed(child, this.source.slice(partition));
    feeding.catch((err: unknown) => fail(`feeding rows failed: ${(err as Error).message}`));
    return task;
  }

  private async feed(child: AttemptProcess, rows: Iterable<unknown>): Promise<void> {
    const stdin = child.stdin!;
    let batch: unknown[] = [];
    try {
      for (const row of rows) {
        batch.push(row);
        if (batch.length >= ROW_BATCH) {
          if (stdin.destroyed) return;
          await writeFrame(stdin, batch, 'msgpack');
          batch = [];
        }
      }
      if (batch.length > 0 && !stdin.destroyed) await writeFrame(stdin, batch, 'msgpack');
    } finally {
      stdin.end();
    }
  }

  /** Writes Arrow IPC streams to the worker's stdin as they come, honouring backpressure. */
  private async feedBytes(child: AttemptProcess, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const stdin = child.stdin!;
    try {
      for await (const chunk of chunks) {
        if (stdin.destroyed) return;
        if (!stdin.write(chunk)) await waitDrained(stdin);
      }
    } finally {
      stdin.end();
    }
  }

  /**
   * Reads the result channel into `into`; resolves with the worker's failure report when it wrote
   * one, or an error message if the channel was corrupt or cut short.
   */
  private async readResults(
    channel: Readable,
    into: unknown[],
    partition: number,
    attempt: number,
    longs: LongMode,
  ): Promise<{ error?: string; failure?: FailureReport }> {
    try {
      // A result with a schema arrives as Arrow; the driver gets its rows as plain objects.
      const { records, failure } = await readResultChannel(channel, 'msgpack', `partition ${partition} attempt ${attempt} result channel`, async (body) =>
        // Loaded on first use: a run whose results have no schema never loads Arrow.
        (await import('../../worker/arrow-rows.js')).streamObjects(body, longs),
      );
      for (const r of records) into.push(r);
      return { failure };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** The worker processes, or the partition host for attempts run as threads (once). */
  pids(): number[] {
    return [...new Set([...this.tasks.values()].map((t) => t.child.pid))].filter((p) => p !== undefined);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.tasks.values()) t.watch?.stop();
    await Promise.all([...this.tasks.values()].map((t) => stopProcess(t.child, 3000)));
    this.tasks.clear();
    await this.host?.stop(3000);
    this.host = undefined;
  }

  killNow(): void {
    this.stopping = true;
    for (const t of this.tasks.values()) {
      t.watch?.stop();
      t.child.kill('SIGKILL');
    }
    this.host?.killNow();
  }
}
