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
import { createActor, waitFor, type Actor } from 'xstate';
import { sparkJobMachine } from '../actors/spark-job.js';

/** How long `stop()` waits for Spark to end a cancelled job and its tasks' workers. */
const STOP_WAIT_MS = 30_000;

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
  private job?: Actor<typeof sparkJobMachine>;
  private dataset?: ResultDataset;

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
    this.dataset = undefined;
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
    const job = createActor(
      sparkJobMachine.provide({
        actions: {
          reportAttemptFailed: (_, p) => events.attemptFailed(p.partition, p.attempt, p.error),
          reportResult: (_, p) => events.result(p.partition, p.attempt, p.records),
          reportGaveUp: (_, p) => {
            plan.log?.(`[sps ${plan.clusterId} spark] job failed: ${p.error.split('\n')[0]}`);
            events.gaveUp(p.partition, p.failures, p.error);
          },
          // Cancelling the job group interrupts the tasks; Spark then kills their Python workers and
          // the parent-death signal takes the Node workers down with them.
          requestCancel: () => {
            if (this.nc && !this.nc.isClosed()) void this.nc.request(subjects.spark('cancel'), encode('cancel'), { timeout: STOP_WAIT_MS }).catch(() => {});
          },
        },
      }),
      { input: { partitions: plan.partitions, maxFailures: plan.maxFailures } },
    );
    this.job = job;
    job.start();
    void this.listen(this.sub, job, plan);
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
      job.stop();
      throw err;
    }
  }

  /** Turns the runner's reports on the run's `spark.*` subjects into events of the job actor. */
  private async listen(sub: Subscription, job: Actor<typeof sparkJobMachine>, plan: LaunchPlan): Promise<void> {
    const here = hostname();
    for await (const msg of sub) {
      let m;
      try {
        m = decode(msg.subject, msg.data);
      } catch (err) {
        plan.log?.(`[sps ${plan.clusterId} spark] ignored: ${(err as Error).message}`);
        continue;
      }
      if (job.getSnapshot().status !== 'active') continue;
      const partition = Number(m.partition);
      const attempt = Number(m.attempt);
      switch (m.t) {
        case 'task_started':
          job.send({ type: 'TASK_STARTED', partition, attempt, pid: Number(m.pid), local: m.host === here });
          break;
        case 'task_failed':
          job.send({ type: 'TASK_FAILED', partition, attempt, error: String(m.error) });
          break;
        case 'result':
          job.send({ type: 'RESULT_CHUNK', partition, attempt, records: m.records as unknown[], last: Boolean(m.last) });
          break;
        case 'job_finished':
          job.send({ type: 'JOB_FINISHED', dataset: typeof m.dataset === 'string' ? { id: m.dataset, records: Number(m.records) } : undefined });
          break;
        case 'job_failed':
          job.send({
            type: 'JOB_FAILED',
            error: String(m.error),
            cancelled: Boolean(m.cancelled),
            partition: typeof m.partition === 'number' ? m.partition : undefined,
            failures: typeof m.failures === 'number' ? m.failures : undefined,
          });
          break;
        default:
          break; // job_started, and our own cancel requests
      }
    }
  }

  pids(): number[] {
    const tasks = this.job?.getSnapshot().context.tasks ?? {};
    return Object.values(tasks).filter((t) => t.local && alive(t.pid)).map((t) => t.pid);
  }

  async stop(): Promise<void> {
    const job = this.job;
    if (job && job.getSnapshot().status === 'active') {
      job.send({ type: 'STOP' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        waitFor(job, (snap) => snap.status !== 'active', { timeout: Infinity }).catch(() => {}),
        new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS))),
      ]);
      clearTimeout(timer);
    }
    const dataset = job?.getSnapshot().context.dataset;
    if (dataset && this.app) this.dataset = new ResultDataset(this.app, dataset.id, dataset.records, this.ownsApp);
    // Spark ends a job before its cancelled tasks are gone; wait (bounded) for their workers.
    const deadline = Date.now() + STOP_WAIT_MS;
    while (this.pids().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const pid of this.pids()) process.kill(pid, 'SIGKILL');
    job?.stop();
    this.sub?.unsubscribe();
    if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => {});
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    if (this.ownsApp && this.app && !this.dataset) await this.app.close();
  }

  killNow(): void {
    for (const pid of this.pids()) process.kill(pid, 'SIGKILL');
    if (this.ownsApp) this.app?.killNow();
  }
}
