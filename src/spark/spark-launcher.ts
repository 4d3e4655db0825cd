import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { createActor, waitFor, type Actor } from 'xstate';
import { sparkJobMachine, type SparkJobEvent } from '../actors/spark-job.js';
import type { SparkEvent } from '../driver/cluster-events.js';
import type { ResolvedOptions } from '../driver/options.js';
import { decode, encode, type Decoded } from '../protocol/codec.js';
import { subjectsFor } from '../protocol/subjects.js';
import { serializeBusAccess } from '../security/bus-access.js';
import { connectBus } from '../transport/bus.js';
import { sharedWorkerEnv, type BusNetwork, type LaunchEvents, type LaunchPlan, type Launcher } from '../driver/launch/launcher.js';
import { driverAddress, driverBindAddress, isLocalMaster } from './driver-address.js';
import { ResultDataset } from './result-dataset.js';
import { SparkApplication } from './spark-app.js';
import { runnerSource } from './spark-source.js';
import { shipWorker } from './ship-program.js';

/** How long `stop()` waits for Spark to end a cancelled job. */
const STOP_WAIT_MS = 30_000;

/** How long a failed job waits for spark-submit's exit, to tell a lost application from a failed job. */
const LOSS_GRACE_MS = 2_000;

/** Resolves true once the application has ended, false if it is still running after `graceMs`. */
function appGone(app: SparkApplication, graceMs: number): Promise<boolean> {
  if (app.isClosed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(app.isClosed);
    }, graceMs);
    const off = app.onExit(() => {
      clearTimeout(timer);
      off();
      resolve(true);
    });
  });
}

/** The runner's job events on the run's bus. */
const JOB_EVENTS = ['job_started', 'stage', 'result', 'job_finished', 'job_failed'] as const;
type JobEvent = Decoded<(typeof JOB_EVENTS)[number]>;

/** The cluster's `spark` event for a job event (`undefined` for results). */
function sparkEvent(m: JobEvent): SparkEvent | undefined {
  if (m.t === 'job_started') return { type: 'job_started', group: m.group };
  if (m.t === 'stage') {
    const { stage: id, attempt, name, tasks, active, completed, failed } = m;
    return { type: 'stage', stage: { id, attempt, name, tasks, active, completed, failed } };
  }
  if (m.t === 'job_finished') return { type: 'job_finished' };
  if (m.t === 'job_failed') return { type: 'job_failed', error: m.error, cancelled: m.cancelled };
  return undefined;
}

/** Turns a job event into an event of the job actor (`undefined` for events it does not follow). */
function toActorEvent(m: JobEvent): SparkJobEvent | undefined {
  switch (m.t) {
    case 'result':
      return { type: 'RESULT_CHUNK', partition: m.partition, attempt: m.attempt, seq: m.seq, records: m.records, last: m.last };
    case 'job_finished':
      return { type: 'JOB_FINISHED', dataset: m.dataset !== null ? { id: m.dataset, records: m.records } : undefined };
    case 'job_failed':
      return { type: 'JOB_FAILED', error: m.error, cancelled: m.cancelled, partition: m.partition, failures: m.failures };
    default:
      return undefined;
  }
}

/** The settings of a run the Spark launcher uses; the rest reach it in the launch plan. */
export type SparkLaunchSettings = Pick<
  ResolvedOptions<unknown, unknown>,
  | 'master'
  | 'spark'
  | 'sparkConf'
  | 'sparkHome'
  | 'natsServer'
  | 'data'
  | 'source'
  | 'partitionBy'
  | 'format'
  | 'barrier'
  | 'cacheResult'
  | 'sparkStartTimeoutMs'
  | 'submitTimeoutMs'
>;

/**
 * Runs the partitions as the tasks of one Spark job (mapPartitionsWithIndex in the PySpark runner):
 * Spark places and retries them, the runner reports the job's events over the run's bus, and the
 * tasks' records come back through Spark as the partitions' results. Executors never speak to the
 * bus about tasks: a worker's pid and host come from its own registration, and the driver signals
 * no process on another host; stopping cancels the job and relies on the parent-death signal.
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
  private unwatch?: () => void;

  constructor(private readonly opts: SparkLaunchSettings) {
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

  busNetwork(): BusNetwork {
    const master = this.opts.spark ? this.opts.spark.info.master : this.opts.master!;
    const conf = this.opts.spark ? this.opts.spark.conf : this.opts.sparkConf;
    // A remote Spark Connect server's local master runs its executors on that server's host.
    const busHost = this.opts.spark?.busHost;
    if (busHost) return { local: false, listen: busHost, advertise: busHost };
    if (isLocalMaster(master)) return { local: true, listen: '127.0.0.1', advertise: '127.0.0.1' };
    return { local: false, listen: driverBindAddress(conf), advertise: driverAddress(conf) };
  }

  async launch(plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    const o = this.opts;
    this.dataset = undefined;
    const note = plan.logger.child({ cluster: plan.clusterId, component: 'spark' });
    if (o.spark) {
      this.app = o.spark;
    } else {
      this.app = await SparkApplication.start({
        master: o.master!,
        conf: o.sparkConf,
        sparkHome: o.sparkHome,
        maxFailures: plan.maxFailures,
        natsServer: o.natsServer,
        startTimeoutMs: o.sparkStartTimeoutMs,
        logger: plan.logger,
      });
      this.ownsApp = true;
    }
    const app = this.app;
    // Losing spark-submit loses the job, its tasks, and the cached results: the run cannot go on.
    this.unwatch = app.onExit((how) => events.fault('spark-submit', `the Spark application ${app.id} (spark-submit pid ${app.pid}) exited with ${how}`));
    const subjects = subjectsFor(plan.clusterId);
    // The driver's own identity on the run's bus; only the runner may publish job events there.
    this.nc = await connectBus(plan.driverBus, `sps-${plan.clusterId}-spark-launcher`);
    this.sub = this.nc.subscribe(subjects.spark('>'));
    this.dir = await mkdtemp(join(tmpdir(), 'sps-spark-'));
    const source = await runnerSource(o.source ?? o.data, this.dir);
    const shipped = await shipWorker(plan.worker, sharedWorkerEnv(plan));
    const job = createActor(
      sparkJobMachine.provide({
        actions: {
          reportResult: (_, p) => events.result(p.partition, p.attempt, p.records),
          // A failed job ends every task: every member owing a result went down with it.
          // A job that fails because spark-submit died is reported as that (its exit follows within
          // moments of the runner's last words), not as the partitions it took along.
          reportGaveUp: (_, p) => {
            note.warn(`job failed: ${p.error.split('\n')[0]}`);
            void appGone(app, LOSS_GRACE_MS).then((gone) => {
              if (!gone) events.gaveUp(p.partition, p.failures, p.error, true);
            });
          },
          // Cancelling the job group interrupts the tasks; Spark then kills their Python workers and
          // the parent-death signal takes the Node workers down with them.
          requestCancel: () => {
            if (this.nc && !this.nc.isClosed()) void this.nc.request(subjects.spark('cancel'), encode('cancel', {}), { timeout: STOP_WAIT_MS }).catch(() => {});
          },
        },
      }),
      { input: { partitions: plan.partitions, maxFailures: plan.maxFailures }, inspect: plan.inspect },
    );
    this.job = job;
    job.start();
    // A subscription that errors ends the runner's reports: the run cannot go on without them.
    this.listen(this.sub, job, plan, events).catch((err: unknown) => events.fault('spark runner reports', (err as Error).message));
    // Per partition: its bus access and its key; the task derives its attempt's secrets from the key.
    const secrets = Object.fromEntries(
      Array.from({ length: plan.partitions }, (_, p) => [p, { bus: plan.busFor(p), partitionKey: plan.secrets.partitionKey(p) }]),
    );
    try {
      const submitted = await app.submitJob(
        plan.clusterId,
        {
          partitions: plan.partitions,
          bus: serializeBusAccess(plan.runnerBus),
          argv: shipped.argv,
          env: shipped.env,
          program: shipped.program,
          // Each reaches its own partition's task only, through Spark's own task channel.
          secrets,
          source,
          barrier: o.barrier,
          // Arrow unless the run asked for rows, or a column has no Arrow form (the runner says so).
          rowFormat: o.format ?? 'auto',
          // A column name (options refuse a function on Spark): the runner places rows by its key.
          partitionBy: o.partitionBy,
          cacheResult: o.cacheResult,
          maxFailures: app.maxFailures,
          hangTimeoutMs: plan.hangTimeoutMs,
          // `thread`: each task runs its attempt as a thread of its run's partition host on its executor.
          isolation: plan.isolation ?? 'process',
          ...(plan.threadHeapMb ? { threadHeapMb: plan.threadHeapMb } : {}),
        },
        o.submitTimeoutMs,
      );
      if (submitted.note) note.info(`rows reach the partitions as ${submitted.rowFormat ?? 'json'}: ${submitted.note}`);
    } catch (err) {
      job.stop();
      throw err;
    }
  }

  /** Turns the runner's reports on the run's `spark.*` subjects into events of the job actor. */
  private async listen(sub: Subscription, job: Actor<typeof sparkJobMachine>, plan: LaunchPlan, events: LaunchEvents): Promise<void> {
    for await (const msg of sub) {
      if (msg.subject.endsWith('.cancel')) continue; // our own orders
      let event: SparkJobEvent | undefined;
      let m: JobEvent;
      try {
        m = decode(msg.subject, msg.data, JOB_EVENTS);
        event = toActorEvent(m);
      } catch (err) {
        plan.logger.child({ cluster: plan.clusterId, component: 'spark' }).warn(`refused: ${(err as Error).message}`);
        continue;
      }
      if (event && job.getSnapshot().status === 'active') job.send(event);
      // The user's `spark` listeners run last; what one throws is its own (as from any emitter),
      // not a refused message, and it does not end this loop.
      try {
        const spark = sparkEvent(m);
        if (spark) events.spark?.(spark);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  /** The driver starts no worker process itself on Spark: Spark's executors do. */
  pids(): number[] {
    return [];
  }

  async stop(): Promise<void> {
    this.unwatch?.();
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
    job?.stop();
    this.sub?.unsubscribe();
    if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => {});
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    if (this.ownsApp && this.app && !this.dataset) await this.app.close();
  }

  killNow(): void {
    if (this.ownsApp) this.app?.killNow();
  }
}
