import { spawn, type ChildProcess } from 'node:child_process';
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
import { serializeSpareAssignment } from '../../security/worker-secrets.js';

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

/**
 * A worker process started ahead of need (option `spareWorker`): its modules loaded, no partition,
 * no secret. It becomes the next attempt of the first partition that loses one.
 */
interface Spare {
  child: ChildProcess;
  clusterId: string;
  /** Where its output lines go: its own logger until it becomes an attempt, then the attempt's. */
  onLine: (line: string) => void;
  /** Set once it exited or could not start: it is not used. */
  gone: boolean;
}

/** Explains a failed attempt: by the worker's own report when it wrote one, else by the line that best explains it among its last output lines. */
function explain(tail: string[], code: number | null, signal: NodeJS.Signals | null, failure?: FailureReport): string {
  const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
  if (failure) return `${how}: [${failure.code}] ${failure.message}`;
  // Node's own report of a crash ends with its version and a blank line: the error line above says more.
  const lines = tail.filter((l) => l.trim() !== '' && !/^Node\.js v\d/.test(l)).reverse();
  const reason = (lines.find((l) => /(^| )failed: /.test(l)) ?? lines.find((l) => /^\w*(Error|Exception)\b[^:]*: /.test(l)) ?? lines[0])?.split('\n')[0];
  return reason ? `${how}: ${reason.replace(/^\[sps [^\]]*\]\s*/, '').replace(/^failed: /, '')}` : how;
}

/**
 * Runs each partition as a child process on this machine, like Spark tasks: a process that dies
 * or exits non-zero is relaunched with the next attempt number until `maxFailures` attempts failed.
 * A child whose liveness ticks (fd 4) stop for `hangTimeoutMs` is hung: it is killed and fails
 * its attempt the same way. With `isolation: 'thread'` each attempt is a thread of one partition
 * host process instead (see `thread-host.ts`), failing and retried the same way; a host that dies
 * fails every attempt it ran, and the next attempt starts a new host. With `spareWorker`, one
 * worker process is kept started ahead (see {@link EmbeddedLauncher.prepareSpare}) and becomes the
 * next attempt of a partition that lost one, receiving its partition and secrets only then.
 */
export class EmbeddedLauncher implements Launcher {
  readonly kind = 'embedded';
  private readonly tasks = new Map<number, Task>();
  private stopping = false;
  private host?: ThreadHost;
  private plan?: LaunchPlan;
  private spare?: Spare;

  constructor(private readonly source: PartitionedSource) {}

  async launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    this.stopping = false;
    this.plan = plan;
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

  /** The environment of every worker of the run: shared settings and its channels' fds, no partition. */
  private workerEnv(plan: LaunchPlan): Record<string, string> {
    return {
      ...sharedWorkerEnv(plan),
      [WORKER_ENV.rowFormat]: this.source.rowFormat,
      [WORKER_ENV.resultFd]: String(RESULT_FD),
      [WORKER_ENV.resultFormat]: 'msgpack',
      [WORKER_ENV.tickFd]: String(TICK_FD),
      [WORKER_ENV.secretFd]: String(SECRET_FD),
    };
  }

  private spawnWorker(plan: LaunchPlan, env: Record<string, string>): ChildProcess {
    const { command, args } = plan.worker;
    return spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C in the driver's terminal must reach the driver only, which
      // then drains every partition; a worker outlives no driver (its tick pipe closes).
      detached: true,
      env: { ...process.env, ...env },
    });
  }

  /**
   * Starts a spare worker when the run keeps one (option `spareWorker`, processes only) and has
   * none: called when every partition serves, so its start does not slow theirs. It holds no
   * partition and no secret until {@link EmbeddedLauncher.takeSpare} assigns it.
   */
  prepareSpare(): void {
    const plan = this.plan;
    if (!plan?.spareWorker || plan.isolation === 'thread' || this.stopping || (this.spare && !this.spare.gone)) return;
    const child = this.spawnWorker(plan, { ...this.workerEnv(plan), [WORKER_ENV.spare]: '1' });
    const logger = plan.logger.child({ cluster: plan.clusterId, component: `spare worker ${child.pid}` });
    const spare: Spare = { child, clusterId: plan.clusterId, onLine: (line) => logWorkerLine(logger, line), gone: false };
    this.spare = spare;
    const gone = (): void => {
      spare.gone = true;
      if (this.spare === spare) this.spare = undefined;
    };
    // A spare that dies before it is needed is not used; the next time every partition serves starts another.
    child.once('error', (err) => {
      logger.warn(`could not start: ${err.message}`);
      gone();
    });
    child.once('exit', gone);
    forEachLine([child.stdout!, child.stderr!], (line) => spare.onLine(line));
    // A spare that dies is reported by its exit, not by its pipes.
    for (const pipe of [child.stdin, ...(child.stdio as unknown[]).slice(RESULT_FD)] as (Readable | Writable | null)[]) pipe?.on('error', () => {});
  }

  /** The spare, if one is ready for this run; it is no longer the spare. */
  private takeSpare(plan: LaunchPlan): Spare | undefined {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare || spare.gone || spare.clusterId !== plan.clusterId || spare.child.exitCode !== null || spare.child.signalCode !== null) return undefined;
    return spare;
  }

  /** Starts an attempt: a worker process, or a thread of the partition host. */
  private startAttempt(plan: LaunchPlan, partition: number, attempt: number): AttemptProcess {
    const env = { ...this.workerEnv(plan), [WORKER_ENV.partition]: String(partition), [WORKER_ENV.attempt]: String(attempt) };
    if (plan.isolation === 'thread') {
      if (!this.host?.alive) this.host = new ThreadHost(plan.worker, plan.logger.child({ cluster: plan.clusterId }), plan.hangTimeoutMs);
      return this.host.start(env, workerSecrets(plan, partition, attempt), plan.threadHeapMb);
    }
    const child = this.spawnWorker(plan, env);
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
    const spare = this.takeSpare(plan);
    const child: AttemptProcess = spare?.child ?? this.startAttempt(plan, partition, attempt);
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
    if (spare) {
      spare.onLine = onLine;
      task.logger.info(`spare worker ${child.pid} becomes this attempt`);
      // The partition, attempt and secrets, on the same private pipe a started worker reads them
      // from: a spare held none of them until now.
      ((child.stdio as unknown[])[SECRET_FD] as Writable).end(serializeSpareAssignment(partition, attempt, workerSecrets(plan, partition, attempt)));
    } else forEachLine([child.stdout!, child.stderr!], onLine);
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
    // A spare holds nothing to drain.
    const stoppingSpare = this.spare ? stopProcess(this.spare.child, 3000) : undefined;
    this.spare = undefined;
    for (const t of this.tasks.values()) t.watch?.stop();
    await Promise.all([...this.tasks.values()].map((t) => stopProcess(t.child, 3000)));
    this.tasks.clear();
    await this.host?.stop(3000);
    this.host = undefined;
    await stoppingSpare;
  }

  killNow(): void {
    this.stopping = true;
    this.spare?.child.kill('SIGKILL');
    for (const t of this.tasks.values()) {
      t.watch?.stop();
      t.child.kill('SIGKILL');
    }
    this.host?.killNow();
  }
}
