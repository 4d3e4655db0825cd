import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { ResolvedOptions } from '../options.js';
import { connectBus } from '../transport/bus.js';
import { decode, encode } from '../transport/codec.js';
import { subjectsFor } from '../transport/subjects.js';
import { sharedWorkerEnv, type LaunchEvents, type LaunchPlan, type Launcher } from './launcher.js';
import { ResultDataset } from './result-dataset.js';
import { SparkApplication } from './spark-app.js';
import { runnerSource } from './spark-source.js';
import { workerCommand } from './worker-command.js';

/** How long `stop()` waits for Spark to end a cancelled job and its tasks' workers. */
const STOP_WAIT_MS = 30_000;

interface TaskProcess {
  attempt: number;
  pid: number;
  local: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the partitions as the tasks of one Spark job (mapPartitionsWithIndex in the PySpark runner):
 * Spark places and retries them, the runner reports the job's events over the run's NATS bus, and
 * the tasks' records come back as the partitions' results. Uses the `spark` application of the
 * options, or starts one on `master` and ends it with the run (unless a cached result keeps it).
 */
export class SparkLauncher implements Launcher {
  readonly kind: string;
  private app?: SparkApplication;
  private ownsApp = false;
  private nc?: NatsConnection;
  private sub?: Subscription;
  private dir?: string;
  private jobRunning = false;
  private jobEnded?: Promise<void>;
  private stopping = false;
  private readonly tasks = new Map<number, TaskProcess>();
  private dataset?: ResultDataset;
  private clusterId = '';
  private allReported = false;

  constructor(private readonly opts: ResolvedOptions<unknown, unknown>) {
    this.kind = `spark ${opts.spark ? opts.spark.info.master : opts.master}`;
  }

  /** The run's cached result records (option `cacheResult`), once the job finished. */
  get resultDataset(): ResultDataset | undefined {
    return this.dataset;
  }

  /** The Spark application the run uses, once launched. */
  get application(): SparkApplication | undefined {
    return this.app;
  }

  async launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    const o = this.opts;
    this.stopping = false;
    this.allReported = false;
    this.clusterId = plan.clusterId;
    if (o.spark) {
      this.app = o.spark;
    } else {
      this.app = await SparkApplication.start({
        master: o.master!,
        conf: o.sparkConf,
        sparkHome: o.sparkHome,
        maxFailures: plan.maxFailures,
        // A cached result outlives the run, and so must the bus the application is controlled on.
        natsUrl: o.cacheResult && !o.natsUrl ? undefined : plan.natsUrl,
        natsServer: o.natsServer,
        log: plan.log ?? false,
      });
      this.ownsApp = true;
    }
    const app = this.app;
    this.nc = await connectBus(plan.natsUrl, `sps-${plan.clusterId}-spark-launcher`);
    const subjects = subjectsFor(plan.clusterId);
    this.sub = this.nc.subscribe(subjects.spark('>'));
    this.dir = await mkdtemp(join(tmpdir(), 'sps-spark-'));
    const source = await runnerSource(o.source ?? o.data, this.dir);
    const { command, args } = workerCommand(plan.serverModule);
    const env = sharedWorkerEnv(plan);
    let endJob!: () => void;
    this.jobEnded = new Promise<void>((r) => (endJob = r));
    void this.listen(this.sub, plan, events, endJob);
    this.jobRunning = true;
    try {
      await app.request('submit', {
        clusterId: plan.clusterId,
        partitions: plan.partitions,
        natsUrl: plan.natsUrl,
        argv: [command, ...args],
        env,
        source,
        barrier: o.barrier,
        cacheResult: o.cacheResult,
        maxFailures: app.maxFailures,
      }, 300_000);
    } catch (err) {
      this.jobRunning = false;
      endJob();
      throw err;
    }
  }

  private async listen(sub: Subscription, plan: LaunchPlan, events: LaunchEvents, endJob: () => void): Promise<void> {
    const here = hostname();
    const pending = new Map<number, unknown[]>();
    const reported = new Set<number>();
    const log = (line: string): void => plan.log?.(`[sps ${plan.clusterId} spark] ${line}`);
    for await (const msg of sub) {
      let m;
      try {
        m = decode(msg.subject, msg.data);
      } catch (err) {
        log(`ignored: ${(err as Error).message}`);
        continue;
      }
      const partition = Number(m.partition);
      const attempt = Number(m.attempt);
      switch (m.t) {
        case 'task_started':
          this.tasks.set(partition, { attempt, pid: Number(m.pid), local: m.host === here });
          break;
        case 'task_failed':
          if (this.tasks.get(partition)?.attempt === attempt) this.tasks.delete(partition);
          events.attemptFailed(partition, attempt, String(m.error));
          break;
        case 'result': {
          const records = [...(pending.get(partition) ?? []), ...(m.records as unknown[])];
          if (!m.last) {
            pending.set(partition, records);
            break;
          }
          pending.delete(partition);
          reported.add(partition);
          this.allReported = reported.size === plan.partitions;
          events.result(partition, attempt, records);
          break;
        }
        case 'job_finished':
          if (typeof m.dataset === 'string') this.dataset = new ResultDataset(this.app!, m.dataset, Number(m.records), this.ownsApp);
          this.jobRunning = false;
          endJob();
          break;
        case 'job_failed': {
          this.jobRunning = false;
          endJob();
          if (m.cancelled || this.stopping) break;
          // Spark names the task that failed too often; without it, blame a partition still owed.
          const lost = typeof m.partition === 'number' ? m.partition : Array.from({ length: plan.partitions }, (_, p) => p).find((p) => !reported.has(p)) ?? 0;
          log(`job failed: ${String(m.error).split('\n')[0]}`);
          events.gaveUp(lost, typeof m.failures === 'number' ? m.failures : plan.maxFailures, String(m.error));
          break;
        }
        default:
          break; // job_started, cancel requests (ours)
      }
    }
  }

  pids(): number[] {
    return [...this.tasks.values()].filter((t) => t.local && alive(t.pid)).map((t) => t.pid);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Once every partition returned its result the job is ending by itself; cancelling it then
    // would only race with its end.
    if (this.jobRunning && !this.allReported && this.nc && !this.nc.isClosed()) {
      // Cancelling the job group interrupts the tasks; Spark then kills their Python workers and
      // the parent-death signal takes the Node workers down with them.
      await this.nc.request(subjectsFor(this.clusterId).spark('cancel'), encode('cancel'), { timeout: STOP_WAIT_MS }).catch(() => {});
    }
    if (this.jobEnded) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.jobEnded, new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
      clearTimeout(timer);
    }
    // Spark ends a job before its cancelled tasks are gone; wait (bounded) for their workers.
    const deadline = Date.now() + STOP_WAIT_MS;
    while (this.pids().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const pid of this.pids()) process.kill(pid, 'SIGKILL');
    this.tasks.clear();
    this.sub?.unsubscribe();
    if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => {});
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    if (this.ownsApp && this.app && !this.dataset) await this.app.close();
  }

  killNow(): void {
    this.stopping = true;
    for (const pid of this.pids()) process.kill(pid, 'SIGKILL');
    if (this.ownsApp) this.app?.killNow();
  }
}
