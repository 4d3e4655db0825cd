import { createLogger, lineLogger, logSparkLine, SILENT_LOGGER } from '../log/logger.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/nats-core';
import { ERROR_CODES, SparkError, SparkSlotsError, type ErrorCode } from '../errors.js';
import { checkOptionsBag, fieldsOf } from '../option-fields.js';
import { checkOptions, withDefaults } from '../option-schema.js';
import { HostedRunnerOptionsSchema, SparkApplicationOptionsSchema, type HostedRunnerOptions, type SparkApplicationOptions } from './spark-app-options.js';
import { connectBus } from '../transport/bus.js';
import { decode, encode, type Decoded } from '../protocol/codec.js';
export type { HostedRunnerOptions, SparkApplicationOptions } from './spark-app-options.js';
import type { MessageOf, MessageType } from '../protocol/schema.js';
import { startNatsServer, type NatsServerProcess } from '../transport/nats-server.js';
import { stopProcess } from '../process/stop-process.js';
import { subjectsFor, type Subjects } from '../protocol/subjects.js';
import { serializeBusAccess, type BusAccess } from '../security/bus-access.js';
import { nkeyUser } from '../security/credentials.js';
import { applicationPermissions } from '../security/permissions.js';
import { driverAddress, isLocalMaster } from './driver-address.js';
import { findSpark, type SparkInstallation } from './spark-home.js';
import { forEachLine } from '../process/output-lines.js';
import { tiedCommand } from '../process/tied-process.js';

/** The options of {@link SparkApplication.sql}. */
const SQL_FIELDS = fieldsOf<{ limit?: number }>({ limit: true });

/** What the runner reported when it became ready. */
export interface SparkApplicationInfo {
  master: string;
  sparkVersion: string;
  applicationId: string;
  /** Task slots when the application started (a cluster master may add executors later). */
  slots: number;
}

/** What the application is doing now. */
export interface SparkApplicationStatus {
  /** Ids of Spark jobs running now. */
  activeJobs: number[];
  /** Cluster runs whose job is running now. */
  jobs: string[];
  /** Cached result datasets. */
  datasets: string[];
  /** Task slots now. */
  slots: number;
}

const RUNNER = fileURLToPath(new URL('./runner/sps_runner.py', import.meta.url));
const PROTOCOL = fileURLToPath(new URL('../protocol/protocol.schema.json', import.meta.url));
/** The runner's bus access reaches it in this environment variable of spark-submit, never argv. */
const RUNNER_BUS_ENV = 'SPS_RUNNER_BUS';

/** Replies of the runner to each order. */
const REPLIES = {
  submit: ['submitted'],
  dataset: ['count', 'records', 'saved', 'unpersisted'],
  sql: ['rows'],
  status: ['status-reply'],
  close: ['closing'],
} as const satisfies Record<string, readonly MessageType[]>;
type Order = keyof typeof REPLIES;
const LOG4J = fileURLToPath(new URL('./runner/log4j2.properties', import.meta.url));
const TAIL_LINES = 40;

/** `local[N]` never retries a task; `local[N,F]` does, F - 1 times. */
export function withLocalRetries(master: string, maxFailures: number): string {
  const m = /^local(?:\[(\*|\d+)\])?$/.exec(master.trim());
  return m ? `local[${m[1] ?? 1},${maxFailures}]` : master;
}

/** The application's control bus: `natsUrl` as given, else a private nats-server whose only users are the driver and the runner. */
async function controlBus(
  id: string,
  options: Pick<SparkApplicationOptions, 'natsUrl' | 'natsAuth' | 'natsTls' | 'natsServer'>,
): Promise<{ nats?: NatsServerProcess; driverBus: BusAccess; runnerBus: BusAccess }> {
  if (options.natsUrl) {
    const access = { url: options.natsUrl, auth: options.natsAuth, tls: options.natsTls };
    return { driverBus: access, runnerBus: access };
  }
  const subjects = subjectsFor(id);
  const driver = nkeyUser(applicationPermissions(id, 'driver'), subjects.inbox('driver'));
  const runner = nkeyUser(applicationPermissions(id, 'runner'), subjects.inbox('runner'));
  const nats = await startNatsServer({ binary: options.natsServer, users: [driver, runner] });
  return {
    nats,
    driverBus: { url: nats.url, auth: { nkeySeed: driver.seed }, inboxPrefix: driver.inboxPrefix },
    runnerBus: { url: nats.url, auth: { nkeySeed: runner.seed }, inboxPrefix: runner.inboxPrefix },
  };
}

/** The runner's `ready` announcement, checked against the protocol. */
function readyInfo(subject: string, data: Uint8Array): SparkApplicationInfo {
  const r = decode(subject, data, ['ready']);
  return { master: r.master, sparkVersion: r.sparkVersion, applicationId: r.applicationId, slots: r.slots };
}

/** What a process hosting the runner itself is handed ({@link SparkApplication.attach}). Secret. */
export interface HostedRunner {
  /** Id of the application's control subjects. */
  appId: string;
  /** The runner's own access to the application's bus. */
  bus: BusAccess;
  /** The private directory (mode 0700) job files are handed over in. */
  jobDir: string;
  /** Path of the protocol's JSON Schema the runner validates messages against. */
  protocol: string;
  /** Path of the runner's Python module, whose code the hosting process runs (one code path). */
  module: string;
}

/**
 * A long-lived Spark application that runs partition-server jobs: spark-submit of the PySpark
 * runner shipped in this package, controlled over NATS. One application can serve many cluster
 * runs (one at a time per cluster) and keeps cached result datasets until they are unpersisted or
 * it is closed. Pass it as the `spark` option of a {@link Cluster} to share it; a cluster given
 * only `master` starts (and ends) its own.
 */
export class SparkApplication implements AsyncDisposable {
  /** Id of the application's control subjects (`sps.<id>.spark.*`). */
  readonly id: string;
  readonly info: SparkApplicationInfo;
  private closed = false;
  private readonly exitHook: () => void;
  private readonly exitListeners = new Set<(how: string) => void>();

  private constructor(
    info: SparkApplicationInfo,
    id: string,
    private readonly subjects: Subjects,
    private readonly nc: NatsConnection,
    /** spark-submit; none when another process hosts the runner ({@link SparkApplication.attach}). */
    private readonly child: ChildProcess | undefined,
    private readonly nats: NatsServerProcess | undefined,
    private readonly tail: string[],
    /** Task attempts per partition before Spark gives up. */
    readonly maxFailures: number,
    private readonly jobDir: string,
    /** The Spark configuration the application started with. */
    readonly conf: Readonly<Record<string, string>>,
    /** Pid of the process hosting the runner when there is no spark-submit. */
    private readonly hostPid = process.pid,
    /** Where executors on other hosts reach this host when the master does not tell (a remote Spark Connect server's local master): runs' buses listen there. */
    readonly busHost?: string,
  ) {
    this.info = info;
    this.id = id;
    this.exitHook = () => this.killNow();
    process.once('exit', this.exitHook);
    child?.once('exit', (code, signal) => {
      this.closed = true;
      void this.nc.close().catch(() => {});
      for (const listener of this.exitListeners) listener(signal ?? `code ${code}`);
    });
  }

  /**
   * Starts the application and resolves once the runner is ready.
   * @throws DependencyMissingError when Java, Spark or the runner's Python packages are missing.
   * @throws SparkError (`SPS_SPARK_START`) when spark-submit fails, with its last output lines.
   */
  static async start(given: SparkApplicationOptions): Promise<SparkApplication> {
    checkOptions(SparkApplicationOptionsSchema, given);
    const options = withDefaults(SparkApplicationOptionsSchema, given);
    const { conf, maxFailures } = options;
    const spark: SparkInstallation = findSpark({ sparkHome: options.sparkHome, python: options.python });
    const id = `spark-${randomBytes(6).toString('hex')}`;
    const subjects = subjectsFor(id);
    const logger = (options.logger ?? (options.log === false ? SILENT_LOGGER : options.log ? lineLogger(options.log) : createLogger())).child({ app: id });
    let nats: NatsServerProcess | undefined;
    let nc: NatsConnection | undefined;
    let child: ChildProcess | undefined;
    // Job files (a run's command, environment and secrets) are handed to the runner here, never on the bus.
    const jobDir = await mkdtemp(join(tmpdir(), 'sps-jobs-'));
    await chmod(jobDir, 0o700);
    try {
      const bus = await controlBus(id, options);
      nats = bus.nats;
      const { driverBus, runnerBus } = bus;
      nc = await connectBus(driverBus, `sps-${id}-app`);
      const ready = nc.subscribe(subjects.spark('ready'), { max: 1 });
      // The server has the subscription before anything can publish `ready` (see attach).
      await nc.flush();
      const master = withLocalRetries(options.master, maxFailures);
      const javaOpts = `-Dlog4j2.configurationFile=file:${LOG4J}`;
      const settings: Record<string, string> = {
        'spark.ui.enabled': 'false',
        'spark.task.maxFailures': String(maxFailures),
        ...conf,
        // A run needs every task placed at once and exactly one attempt running per partition.
        'spark.locality.wait': '0',
        'spark.speculation': 'false',
        'spark.driver.extraJavaOptions': `${conf['spark.driver.extraJavaOptions'] ?? ''} ${javaOpts}`.trim(),
        'spark.executor.extraJavaOptions': `${conf['spark.executor.extraJavaOptions'] ?? ''} ${javaOpts}`.trim(),
      };
      const submitArgs = [
        '--master',
        master,
        '--name',
        options.appName,
        ...Object.entries(settings).flatMap(([k, v]) => ['--conf', `${k}=${v}`]),
        RUNNER,
        '--app-id',
        id,
        '--job-dir',
        jobDir,
        '--protocol',
        PROTOCOL,
        '--app-name',
        options.appName,
        '--slot-wait-ms',
        String(options.slotWaitMs),
      ];
      // Tied to this process: the driver JVM cannot outlive it, even when it is SIGKILLed.
      const tied = tiedCommand(spark.sparkSubmit, submitArgs, { python: spark.python, signal: 'SIGKILL' });
      child = spawn(tied.command, tied.args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, out of reach of a Ctrl-C meant for the driver (see nats-server.ts).
        detached: true,
        env: {
          ...process.env,
          SPARK_HOME: spark.home,
          PYSPARK_PYTHON: spark.python,
          PYSPARK_DRIVER_PYTHON: spark.python,
          // Local masters stay on loopback; on a cluster Spark picks the driver's address itself.
          ...(isLocalMaster(master) ? { SPARK_LOCAL_IP: process.env.SPARK_LOCAL_IP ?? '127.0.0.1' } : {}),
          JAVA_HOME: process.env.JAVA_HOME ?? '',
          [RUNNER_BUS_ENV]: serializeBusAccess(runnerBus),
        },
      });
      const tail: string[] = [];
      forEachLine([child.stdout!, child.stderr!], (line) => {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        logSparkLine(logger, line);
      });
      const started = child;
      const timeoutMs = options.startTimeoutMs;
      const info = await new Promise<SparkApplicationInfo>((resolve, reject) => {
        const fail = (why: string): void =>
          reject(new SparkError('SPS_SPARK_START', `Spark application (master ${master}) did not start: ${why}\n${tail.join('\n')}`));
        const timer = setTimeout(() => fail(`the runner was not ready within ${timeoutMs} ms (startTimeoutMs; a cluster's sparkStartTimeoutMs)`), timeoutMs);
        started.once('exit', (code, signal) => {
          clearTimeout(timer);
          fail(`spark-submit exited with ${signal ?? `code ${code}`}`);
        });
        started.once('error', (err) => {
          clearTimeout(timer);
          fail(err.message);
        });
        (async () => {
          for await (const msg of ready) {
            clearTimeout(timer);
            try {
              resolve(readyInfo(msg.subject, msg.data));
            } catch (err) {
              fail((err as Error).message);
            }
          }
          // A subscription error ends the wait as a failed start, not an unhandled rejection.
        })().catch((err: unknown) => fail(`its ready subscription failed: ${(err as Error).message}`));
      });
      started.removeAllListeners('exit');
      started.removeAllListeners('error');
      return new SparkApplication(info, id, subjects, nc, started, nats, tail, maxFailures, jobDir, { ...conf });
    } catch (err) {
      if (child) await stopProcess(child, 5000);
      if (nc && !nc.isClosed()) await nc.close().catch(() => {});
      await nats?.stop();
      await rm(jobDir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * An application whose runner runs in another process on this machine instead of a spark-submit
   * of its own: the Python package's Cluster hosts it in the user's own SparkSession. The process
   * is handed the runner's access through `options.host` (never argv or the environment), and
   * this resolves once its runner reported ready. close() ends the runner's service, not the process.
   * @throws SparkError (`SPS_SPARK_START`) when the runner is not ready in time.
   */
  static async attach(given: HostedRunnerOptions): Promise<SparkApplication> {
    checkOptions(HostedRunnerOptionsSchema, given);
    const options = withDefaults(HostedRunnerOptionsSchema, given);
    const id = `spark-${randomBytes(6).toString('hex')}`;
    const subjects = subjectsFor(id);
    const jobDir = await mkdtemp(join(tmpdir(), 'sps-jobs-'));
    await chmod(jobDir, 0o700);
    let nats: NatsServerProcess | undefined;
    let nc: NatsConnection | undefined;
    try {
      const bus = await controlBus(id, { natsServer: options.natsServer });
      nats = bus.nats;
      nc = await connectBus(bus.driverBus, `sps-${id}-app`);
      const ready = nc.subscribe(subjects.spark('ready'), { max: 1 });
      // subscribe() only queues the SUB; the host may publish `ready` before it is written (a
      // runner already loaded connects in milliseconds), and a `ready` nobody is subscribed to is
      // lost for good. The flush's round trip means the server has the subscription.
      await nc.flush();
      options.host({ appId: id, bus: bus.runnerBus, jobDir, protocol: PROTOCOL, module: RUNNER });
      const timeoutMs = options.readyTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const info = await Promise.race([
        (async () => {
          for await (const msg of ready) return readyInfo(msg.subject, msg.data);
          throw new SparkError('SPS_SPARK_START', 'the control bus closed before the hosted runner was ready');
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new SparkError('SPS_SPARK_START', `the runner hosted by process ${options.pid} was not ready within ${timeoutMs} ms`)),
            timeoutMs,
          );
          // The host's own word that its runner failed ends the wait at once, with its reason.
          options.signal?.addEventListener('abort', () => reject(options.signal!.reason as Error), { once: true });
          if (options.signal?.aborted) reject(options.signal.reason as Error);
        }),
      ]).finally(() => clearTimeout(timer));
      return new SparkApplication(info, id, subjects, nc, undefined, nats, [], options.maxFailures, jobDir, { ...options.conf }, options.pid, options.busHost);
    } catch (err) {
      if (nc && !nc.isClosed()) await nc.close().catch(() => {});
      await nats?.stop();
      await rm(jobDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Pid of spark-submit (the driver JVM), or of the process hosting the runner. */
  get pid(): number {
    return this.child ? this.child.pid! : this.hostPid;
  }

  /** URL of the application's control bus. */
  get natsUrl(): string {
    return this.nc.getServer();
  }

  /**
   * Calls `listener` with how spark-submit ended (`code 1`, `SIGKILL`) when it exits, for whatever
   * reason; returns a function that removes the listener.
   */
  onExit(listener: (how: string) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  /** True once the application has ended. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Where executors reach this application's driver: `spark.driver.host`, else `SPARK_LOCAL_IP`, else this host's first non-loopback IPv4 address. */
  get driverHost(): string {
    return driverAddress(this.conf);
  }

  /**
   * Sends one order to the runner and returns its reply, checked against the protocol.
   * @throws SparkError / SparkSlotsError with the runner's error.
   * @internal The runner's wire; users call {@link SparkApplication.sql} and {@link SparkApplication.status}.
   */
  async request<O extends Order>(op: O, fields: MessageOf<O>, timeoutMs = 120_000, timeoutOption?: string): Promise<Decoded<(typeof REPLIES)[O][number]>> {
    if (this.closed) throw new SparkError('SPS_SPARK_RUNNER', `Spark application ${this.id} has ended`);
    let msg;
    try {
      msg = await this.nc.request(this.subjects.spark(op), encode(op, fields), { timeout: timeoutMs });
    } catch (err) {
      const within = `within ${timeoutMs} ms${timeoutOption ? ` (${timeoutOption})` : ''}`;
      throw new SparkError('SPS_SPARK_RUNNER', `Spark application ${this.id} did not answer "${op}" ${within}: ${(err as Error).message}`, { cause: err });
    }
    const reply = decode(msg.subject, msg.data, [...REPLIES[op], 'error'] as MessageType[]);
    if (reply.t === 'error') {
      const e = reply as MessageOf<'error'>;
      if (e.code === 'SPS_SPARK_SLOTS') throw new SparkSlotsError(e.available ?? 0, e.needed ?? 0, e.error);
      // The runner's code (e.g. SPS_MALFORMED_MESSAGE for an order it refused); one outside the registry is an error of the runner.
      throw new SparkError(e.code in ERROR_CODES ? (e.code as ErrorCode) : 'SPS_SPARK_RUNNER', e.error);
    }
    return reply as never;
  }

  /**
   * Runs a cluster's job. Its command, environment and secrets go into a job file (mode 0600) in
   * the application's private directory; the order on the bus names only the file.
   */
  async submitJob(
    clusterId: string,
    job: Record<string, unknown>,
    timeoutMs: number,
    timeoutOption = 'submitTimeoutMs',
  ): Promise<{ rowFormat?: 'json' | 'arrow'; note?: string }> {
    const file = join(this.jobDir, `${clusterId}.json`);
    await writeFile(file, JSON.stringify(job), { mode: 0o600 });
    try {
      const r = await this.request('submit', { clusterId, job: clusterId }, timeoutMs, timeoutOption);
      return { rowFormat: r.rowFormat, note: r.note };
    } finally {
      // The runner deletes it once read; this covers a runner that never got that far.
      await rm(file, { force: true });
    }
  }

  /** Runs a Spark SQL statement (e.g. to create a view) and returns up to `limit` rows as objects. */
  async sql(statement: string, opts: { limit?: number } = {}): Promise<Record<string, unknown>[]> {
    checkOptionsBag(opts, SQL_FIELDS, 'sql');
    const reply = await this.request('sql', { statement, limit: opts.limit ?? 10_000 });
    return reply.rows;
  }

  /** What the application runs and holds now. */
  async status(): Promise<SparkApplicationStatus> {
    const r = await this.request('status', {});
    return { activeJobs: r.activeJobs, jobs: r.jobs, datasets: r.datasets, slots: r.slots };
  }

  /** Closes the application (as `close()`) when an `await using` scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Ends the application: cancels running jobs, drops cached datasets, stops spark-submit (and
   * the private nats-server), and resolves when they are gone.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      await this.request('close', {}, 10_000).catch(() => {});
    }
    // The runner exits by itself after "close"; give Spark's shutdown a moment before signalling.
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => child.once('exit', () => r())), new Promise<void>((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
    }
    if (child) await stopProcess(child, 10_000);
    this.closed = true;
    if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
    await this.nats?.stop();
    await rm(this.jobDir, { recursive: true, force: true });
    process.removeListener('exit', this.exitHook);
  }

  /** Kills spark-submit and the private nats-server at once (for a process `exit` hook). */
  killNow(): void {
    this.child?.kill('SIGKILL');
    if (this.nats) {
      try {
        process.kill(this.nats.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
