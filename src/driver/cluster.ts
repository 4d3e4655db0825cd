import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { waitFor } from 'xstate';
import { memberList, resultsMissing, type SupervisorContext } from '../actors/supervisor.js';
import type { Member } from '../protocol/types.js';
import {
  AbortedError,
  ClusterStateError,
  ComponentLostError,
  PartitionFailedError,
  RequestError,
  SparkPartitionServerError,
  StartTimeoutError,
  StopTimeoutError,
  WorkerError,
} from '../errors.js';
import { resolveOptions, type ClusterOptions, type ResolvedOptions } from './options.js';
import { tappedLogger } from '../log/logger.js';
import { hostSupervisor, type SupervisorActor } from './supervisor-host.js';
import type { Launcher } from './launch/launcher.js';
import type { ResultDataset } from '../spark/result-dataset.js';
import { selectLauncher } from './select-launcher.js';
import { prepareWorker } from './launch/worker-command.js';
import { partitionOfKey, type PartitionKey } from '../protocol/key-partition.js';
import { httpFallbackNotice } from '../transport/http-choice.js';
import { connectBus, requestEndpoint, unknownEndpoint, unwrapReply, type NatsConnection } from '../transport/bus.js';
import { subjectsFor, type Subjects } from '../protocol/subjects.js';
import { startRunBus, type RunBus } from './run-bus.js';
import type { BusAccess } from '../security/bus-access.js';
import { RunKey } from '../security/attempt-secrets.js';
import {
  abandonable,
  callOptions,
  requestAll,
  requestAllOptions,
  type CallOptions,
  type PartitionReply,
  type RequestAllOptions,
} from '../protocol/call-options.js';
import { callRejoining } from './request-rejoin.js';
import { checkOptionsBag, fieldsOf } from '../option-fields.js';
import { writeCredentialsFile } from './credentials-file.js';
import { createEventsStream, createUpdatesStream, deleteRunStreams, readDeadLetters, type DeadLetter } from './updates-stream.js';
import type { UpdatesPlan } from '../protocol/updates.js';
import { watchUpdatesLag } from './updates-lag.js';
import { memberEvents, resultCount, servingCount, type ClusterEvents, type ClusterState } from './cluster-events.js';
import { RunMonitor, type RunInfo } from './dashboard/run-monitor.js';
import { openDashboard, type Dashboard, type DashboardOptions } from './dashboard/dashboard-server.js';

export type { ClusterState } from './cluster-events.js';
export type { CallOptions, RejoinOptions, RequestAllOptions } from '../protocol/call-options.js';

const STOPPED_DURING_START = Symbol('stopped during start');
/** The options of `start()`. */
const START_FIELDS = fieldsOf<{ signal?: AbortSignal }>({ signal: true });
/** The options of `dashboard()`. */
const DASHBOARD_FIELDS = fieldsOf<DashboardOptions>({ port: true, host: true, http: true, httpServer: true });

/** Where a partition's server can be reached. */
export interface HostAddress {
  /** Host name or address the partition advertises (option `advertiseHost`). */
  host: string;
  /** HTTP port of the partition's server, or `null` when it serves over NATS only (no HTTP). */
  port: number | null;
}

/** Counters of the current (or last) run. */
export interface ClusterStats {
  /** Messages on the cluster's control subjects that did not decode (ignored). */
  malformed: number;
  /** Messages from an attempt that had already been replaced (ignored). */
  stale: number;
  /** Membership changes so far. */
  epoch: number;
  /** Registrations refused for an attempt no launcher started, or a proof used before (ignored). */
  forged: number;
}

interface Run {
  id: string;
  /** The dashboard's token: the driver's own, derived from nothing, handed to no worker. */
  token: string;
  /** Derives each attempt's control token and registration proof; never leaves the driver. */
  key: RunKey;
  /** stop() came before the supervisor existed: start() unwinds at its next step. */
  aborted: boolean;
  /** Teardown under way: components going away now is expected, not a fault. */
  closing: boolean;
  /** Settles when start() is over, whichever way. */
  starting?: Promise<void>;
  subjects: Subjects;
  bus?: RunBus;
  nc?: NatsConnection;
  supervisor?: { actor: SupervisorActor; close(): void };
  launcher?: Launcher;
  exitHook?: () => void;
  /** What the dashboards show, kept from the start of the run. */
  monitor: RunMonitor;
  /** Stops feeding the monitor with the cluster's events. */
  unmonitor: () => void;
  dashboards: Set<Dashboard>;
  /** The run's live updates (option `updates`), once its stream exists. */
  updates?: UpdatesPlan;
  /** Reads the partitions' update lag for the dashboards, from the first dashboard on. */
  updatesLag?: { stop(): void };
}

/**
 * The driver side of a cluster: launches one partition server per partition, waits until all
 * serve, lets you query them, and on `stop()` shuts them down and collects their results.
 * Subclass it to add application methods (see the README's `DemoCluster`).
 *
 * It emits {@link ClusterEvents}: `member` (a partition registered, serves, was replaced, failed,
 * was lost, drains, finished), `state` (the cluster's own state), `progress` (partitions serving
 * during `start()`, results in during `stop()`), and `spark` (the Spark job's events).
 * `await using cluster = new Cluster(…)` stops it when the scope ends.
 */
export class Cluster<Row = unknown, Config = unknown, Result = unknown> extends EventEmitter<ClusterEvents> implements AsyncDisposable {
  /** The validated options. */
  protected readonly options: ResolvedOptions<Row, Config>;
  private run?: Run;
  private lastContext?: SupervisorContext;
  private status: ClusterState = 'idle';
  private results = new Map<number, Result[]>();
  private stopping?: Promise<void>;
  /** Aborts the stop under way (any caller's signal). */
  private cutStop?: AbortController;
  /** What failed the cluster after start() resolved; stop() throws it once. */
  private failure?: SparkPartitionServerError;

  constructor(options: ClusterOptions<Row, Config>) {
    super();
    this.options = resolveOptions(options);
  }

  /** Changes the state and tells the `state` listeners. */
  private setStatus(next: ClusterState, error?: Error): void {
    const previous = this.status;
    if (next === previous) return;
    this.status = next;
    this.emit('state', { state: next, previous, ...(error ? { error } : {}) });
  }

  /** Stops the cluster (as `stop()`) when an `await using` scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** The cluster's lifecycle state. */
  get state(): ClusterState {
    return this.status;
  }

  /** Id of the current (or last) run; its NATS subjects live under `sps.<id>.`. */
  get id(): string | undefined {
    return this.run?.id;
  }

  /**
   * The dashboard's token of the current run (`Authorization: Bearer <token>`, or the URL that
   * {@link Cluster.dashboard} returns). Only the driver holds it; no worker ever sees it. Keep it private.
   */
  get token(): string | undefined {
    return this.run?.token;
  }

  /**
   * The control token of `partition`'s current attempt: its `POST /control/shutdown` accepts this
   * one only (not another partition's or attempt's, nor the dashboard's). Keep it private.
   * @throws ClusterStateError when the partition has no registered attempt in a run.
   */
  controlToken(partition: number): string {
    const member = this.members.find((m) => m.partition === partition);
    if (!this.run || !member) throw new ClusterStateError(`partition ${partition} has no registered attempt`);
    return this.run.key.attempt(partition, member.attempt).controlToken;
  }

  /** URL(s) of the NATS server the cluster uses, comma-separated (what workers are given). */
  get natsUrl(): string | undefined {
    return this.run?.bus?.url ?? this.options.natsUrl;
  }

  /**
   * Bus access for another service (in any language) that queries the partitions: the URL, an
   * nkey seed whose user may only call endpoints (`sps.<id>.p.…`) and ask for the membership
   * (`sps.<id>.ctl.members.get`), its inbox prefix, and the CA when the bus uses TLS. It cannot
   * shut partitions down or publish anything else. Role `publisher` (a run with option `updates`)
   * may publish updates and nothing else (docs/updates.md). Keep the seed secret.
   * On a cluster you run with `natsAccount`, the auth is a creds file's text (user JWT and seed) instead.
   * @throws ClusterStateError before start(), or on a user-run server (natsUrl) without `natsAccount`, whose users are its operator's.
   */
  credentials(role: 'client' | 'publisher'): BusAccess {
    if (role !== 'client' && role !== 'publisher')
      throw new ClusterStateError(`no credentials for role "${String(role)}"; only "client" and "publisher" are handed out`);
    if (role === 'publisher' && !this.options.updates) throw new ClusterStateError('publisher credentials exist only in a run with option updates');
    const access = this.run?.bus?.[role];
    if (!access) {
      throw new ClusterStateError(
        this.options.natsUrl && !this.options.natsAccount
          ? `${role} credentials exist only for the private nats-server or with natsAccount; on natsUrl alone, its operator makes users`
          : `the cluster is ${this.status}; ${role} credentials exist once start() began`,
      );
    }
    return access;
  }

  /**
   * Writes {@link Cluster.credentials} with the cluster's id to a credentials file (JSON, created
   * anew with mode 0600), the file `sps status` and `sps request` take as `--credentials-file`, and
   * any client of yours may read: `{ clusterId, url, auth, inboxPrefix, tls? }` (see the README's
   * "Command line"). The file holds the client's secret: remove it when the run ends.
   * @throws ClusterStateError as {@link Cluster.credentials}.
   */
  writeCredentials(path: string, role: 'client' | 'publisher'): void {
    writeCredentialsFile(path, { clusterId: this.id!, ...this.credentials(role) });
  }

  /** The number of partitions. */
  get partitions(): number {
    return this.options.partitions;
  }

  /** Pids of the worker processes the launcher runs now. */
  get workerPids(): number[] {
    return this.run?.launcher?.pids() ?? [];
  }

  /** Pid of the private nats-server, when the cluster started one: its current process (the driver starts it again when it dies). */
  get natsServerPid(): number | undefined {
    return this.run?.bus?.nats?.pid;
  }

  private get context(): SupervisorContext | undefined {
    return this.run?.supervisor?.actor.getSnapshot().context ?? this.lastContext;
  }

  /** Every partition's current member: attempt, host, port, pid and state. */
  get members(): Member[] {
    const ctx = this.context;
    return ctx ? memberList(ctx) : [];
  }

  /** Partition → where its server listens (port `null` for servers without HTTP). */
  get hosts(): Map<number, HostAddress> {
    return new Map(this.members.map((m) => [m.partition, { host: m.host, port: m.port }]));
  }

  /** Counters of malformed and stale messages. */
  get stats(): ClusterStats {
    const ctx = this.context;
    return { malformed: ctx?.malformed ?? 0, stale: ctx?.stale ?? 0, epoch: ctx?.epoch ?? 0, forged: ctx?.forged ?? 0 };
  }

  /**
   * Launches the partition servers and resolves once every partition is serving.
   * @throws StartTimeoutError naming the partitions that were not serving in time.
   * @throws PartitionFailedError when a partition failed `maxFailures` times.
   * @throws ComponentLostError when the bus, the nats-server or Spark went away.
   * On failure every process the start launched is stopped.
   */
  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    checkOptionsBag(opts, START_FIELDS, 'cluster.start');
    const { signal } = opts;
    signal?.throwIfAborted();
    if (this.status === 'starting' || this.status === 'running' || this.status === 'stopping') {
      throw new ClusterStateError(`start() called while the cluster is ${this.status}`);
    }
    if (this.run && !this.run.closing) {
      // A run that failed while running stays up until stop(); a new start() ends it first, so it cannot leak.
      this.setStatus('stopping');
      await this.teardown().catch(() => {});
    }
    const o = this.options;
    const id = `${o.name}-${randomBytes(6).toString('hex')}`;
    const monitor = new RunMonitor(o.partitions, () => this.runInfo(run));
    const run: Run = {
      id,
      token: randomBytes(24).toString('hex'),
      key: new RunKey(),
      subjects: subjectsFor(id),
      aborted: false,
      closing: false,
      monitor,
      unmonitor: this.feed(monitor),
      dashboards: new Set(),
    };
    this.run = run;
    this.lastContext = undefined;
    this.failure = undefined;
    this.results = new Map();
    this.setStatus('starting');
    let settle!: () => void;
    // Aborting the start stops what it launched; start() then rejects with the signal's reason.
    const onAbort = (): void => void this.stop().catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    run.starting = new Promise<void>((r) => (settle = r));
    // stop() may come during any await below; it then only marks the run, and start() unwinds here.
    const checkAborted = (): void => {
      if (run.aborted) throw Object.assign(new ClusterStateError('stop() was called before every partition was serving'), { [STOPPED_DURING_START]: true });
    };
    // Compiling the server module overlaps with starting the bus; awaited before the launch. Workers
    // and threads, on this machine or on Spark's executors (the job ships the program), load one
    // inlined program (see prepareWorker); a launcher of the user's own gets the server module.
    const preparing = prepareWorker(o.serverModule, { inline: o.launcher === undefined });
    void preparing.catch(() => {});
    try {
      run.launcher = await selectLauncher(o as ResolvedOptions<unknown, unknown>);
      checkAborted();
      const network = run.launcher.busNetwork?.();
      run.bus = await startRunBus(o as ResolvedOptions<unknown, unknown>, id, network);
      checkAborted();
      const bus = run.bus;
      run.nc = await connectBus(bus.driver, `sps-${id}-driver`);
      monitor.listen(run.nc, run.subjects);
      checkAborted();
      // Before any worker: every attempt replays its partition from this first sequence.
      if (o.updates) run.updates = await createUpdatesStream(run.nc, id, run.subjects, o.updates, o.partitions);
      if (run.dashboards.size > 0) this.watchUpdatesLag(run);
      if (o.events) await createEventsStream(run.nc, id, run.subjects);
      checkAborted();
      const worker = await preparing;
      checkAborted();
      const advertise = typeof o.advertiseHost === 'function' ? o.advertiseHost : undefined;
      run.supervisor = hostSupervisor(
        run.nc,
        run.subjects,
        {
          partitions: o.partitions,
          registerTimeoutMs: o.registerTimeoutMs,
          startTimeoutMs: o.startTimeoutMs,
          stopTimeoutMs: o.stopTimeoutMs,
        },
        run.key,
        advertise,
        o.heartbeatMs,
        o.inspect,
      );
      const actor = run.supervisor.actor;
      this.watch(run, actor);
      const launcher = run.launcher;
      run.exitHook = () => {
        // An exit listener must not throw: each kill is tried on its own, and a process already gone is fine.
        try {
          launcher.killNow();
        } catch {
          // The nats-server is still killed below.
        }
        try {
          // Only the pid of the nats-server this run spawned itself.
          if (bus.nats) process.kill(bus.nats.pid, 'SIGKILL');
        } catch {
          // Already gone (ESRCH).
        }
      };
      process.once('exit', run.exitHook);
      await launcher.launch(
        {
          clusterId: id,
          partitions: o.partitions,
          busFor: bus.busFor,
          driverBus: bus.driver,
          runnerBus: bus.runner,
          secrets: run.key,
          worker,
          serverModule: worker.serverModule,
          serverExport: o.serverExport,
          configJson: o.configJson,
          bindHost: o.bindHost ?? (!network || network.local ? '127.0.0.1' : 'auto'),
          advertiseHost: typeof o.advertiseHost === 'string' ? o.advertiseHost : undefined,
          maxFailures: o.maxFailures,
          tickMs: o.heartbeatMs,
          hangTimeoutMs: o.hangTimeoutMs,
          driverTimeoutMs: o.driverTimeoutMs,
          // Below the stop timeout, so a stuck handler's partition still drains and returns its result.
          drainTimeoutMs: Math.max(1000, Math.floor(o.stopTimeoutMs * 0.8)),
          requestTimeoutMs: o.requestTimeoutMs,
          env: o.env,
          longs: o.longs,
          collectiveTransport: o.collectiveTransport,
          http: o.http,
          isolation: o.isolation,
          threadHeapMb: o.threadHeapMb,
          spareWorker: o.spareWorker,
          inspect: o.inspect,
          // Worker records also feed the dashboards' log tails.
          logger: tappedLogger(o.logger, (bindings, message) => monitor.record(bindings, message)),
          logLevel: o.logLevel,
          updates: run.updates,
          events: o.events,
        },
        {
          attemptFailed: (partition, attempt, error, report) => send(actor, { type: 'ATTEMPT_FAILED', partition, attempt, error, report }),
          gaveUp: (partition, failures, error, all) => send(actor, { type: 'GAVE_UP', partition, failures, error, all }),
          result: (partition, attempt, records) => send(actor, { type: 'RESULT', partition, attempt, records }),
          fault: (component, error) => {
            if (!run.closing) send(actor, { type: 'FAULT', component, error });
          },
          spark: (event) => this.emit('spark', event),
        },
      );
      // The register and start timeouts run from here: the Spark application and the submit had their own.
      send(actor, { type: 'LAUNCHED' });
      const snap = await waitFor(actor, (s) => !s.matches('starting'), { timeout: Infinity });
      if (snap.value === 'stopping' || snap.value === 'stopped') {
        // stop() was called meanwhile: it drains what started and tears the run down itself.
        throw Object.assign(new ClusterStateError('stop() was called before every partition was serving'), { [STOPPED_DURING_START]: true });
      }
      if (snap.value !== 'running') throw this.failureError(snap.context);
      this.setStatus('running');
      launcher.prepareSpare?.();
      // Said once per run here, not by every worker (they log it at debug): workers on this host's
      // Node serve HTTP the same way, and one line per partition would bury the rest of the output.
      const fallback = this.members.some((m) => m.port != null) ? httpFallbackNotice(o.http) : undefined;
      if (fallback) o.logger.warn(`workers on this host: ${fallback}`);
    } catch (err) {
      const stoppedByUser = Boolean((err as Record<symbol, unknown>)[STOPPED_DURING_START]);
      if (!(stoppedByUser && run.supervisor)) {
        // With a supervisor, stop() drains the run itself; before it exists, start() tears down.
        this.setStatus(stoppedByUser ? 'stopping' : 'failed', stoppedByUser ? undefined : (err as Error));
        // The start's own error says what happened; a teardown step that fails still ran every other.
        await this.teardown().catch(() => {});
        if (stoppedByUser) this.setStatus('stopped');
      }
      if (stoppedByUser && signal?.aborted) {
        // The stop it caused is over before the aborted start says so.
        await this.stopping?.catch(() => {});
        throw signal.reason;
      }
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      settle();
    }
  }

  /** Feeds the cluster's events to `monitor`; returns the function that stops it. */
  private feed(monitor: RunMonitor): () => void {
    const member = monitor.member.bind(monitor);
    const state = monitor.state.bind(monitor);
    const spark = monitor.spark.bind(monitor);
    this.on('member', member).on('state', state).on('spark', spark);
    return () => this.off('member', member).off('state', state).off('spark', spark);
  }

  private runInfo(run: Run): RunInfo {
    const app = (run.launcher as { application?: { info: { applicationId: string; master: string; sparkVersion: string } } } | undefined)?.application;
    return {
      id: run.id,
      state: this.status,
      launcher: run.launcher?.kind,
      ...(app ? { spark: { applicationId: app.info.applicationId, master: app.info.master, sparkVersion: app.info.sparkVersion } } : {}),
    };
  }

  /**
   * Serves a live dashboard of this run from the driver: one row per partition (state, attempt,
   * host, pid, uptime, restarts and their causes, requests/s, errors, p50/p99 latency, its log's
   * tail), a timeline of state changes, and the Spark application and job. The page and its
   * WebSocket need the cluster's token: open the returned `url`, which carries it once. Binds
   * `127.0.0.1` unless `host` says otherwise; `stop()` closes it.
   * @throws ClusterStateError unless the cluster is starting or running.
   * @throws InvalidOptionError for a bad port; SparkPartitionServerError `SPS_HTTP_LISTEN` when it cannot listen.
   */
  async dashboard(opts: DashboardOptions = {}): Promise<Dashboard> {
    checkOptionsBag(opts, DASHBOARD_FIELDS, 'cluster.dashboard');
    const run = this.run;
    if (!run || run.closing || (this.status !== 'starting' && this.status !== 'running')) {
      throw new ClusterStateError(`dashboard() needs a starting or running cluster; it is ${this.status}`);
    }
    const dashboard = await openDashboard(run.monitor, run.token, { http: this.options.http, ...opts }, (line) => this.options.logger.warn(line));
    if (run.closing || this.run !== run) {
      await dashboard.close();
      throw new ClusterStateError('the cluster stopped while its dashboard was opening');
    }
    run.dashboards.add(dashboard);
    this.watchUpdatesLag(run);
    return dashboard;
  }

  /** Feeds the dashboards each partition's update lag, once the run has both. */
  private watchUpdatesLag(run: Run): void {
    if (run.updatesLag || !run.updates || !run.nc) return;
    run.updatesLag = watchUpdatesLag(run.nc, run.updates, this.options.partitions, this.options.heartbeatMs, (p, lag) => run.monitor.updatesLag(p, lag));
  }

  /** Turns what the run's components do after start into the cluster's state: a fault fails it at once. */
  private watch(run: Run, actor: SupervisorActor): void {
    let seen: SupervisorContext | undefined;
    let progress = '';
    actor.subscribe((snap) => {
      if (this.run !== run) return;
      const ctx = snap.context;
      if (ctx !== seen) {
        const events = memberEvents(seen, ctx);
        for (const e of events) this.emit('member', e);
        seen = ctx;
        // A partition serving again after losing an attempt: the launcher may start its next spare.
        if (this.status === 'running' && events.some((e) => e.kind === 'serving') && servingCount(ctx) === ctx.partitions) run.launcher?.prepareSpare?.();
      }
      // The cluster's own state, not the snapshot's: the step that completes a phase already left it.
      const phase = this.status === 'starting' ? 'start' : this.status === 'stopping' ? 'stop' : undefined;
      if (phase) {
        const done = phase === 'start' ? servingCount(ctx) : resultCount(ctx);
        if (`${phase}${done}` !== progress) {
          progress = `${phase}${done}`;
          this.emit('progress', { phase, done, total: ctx.partitions });
        }
      }
      if ((snap.value === 'degraded' || snap.value === 'failed') && this.status === 'running') {
        this.failure = this.failureError(snap.context);
        this.setStatus('failed', this.failure);
      }
    });
    const fault = (component: string, error: string): void => {
      if (!run.closing) send(actor, { type: 'FAULT', component, error });
    };
    // The driver starts its nats-server again when it exits; only one that keeps dying is lost.
    void run.bus?.lost?.then((why) => fault('nats-server', why));
    void run.nc?.closed().then((err) => fault('bus connection', `the driver's NATS connection closed${err ? `: ${err.message}` : ''}`));
  }

  /**
   * Shuts every partition down (shutdown broadcast, then drain) and resolves once every partition
   * finished and its result was collected. A stopped cluster can be started again.
   *
   * `signal` cuts the stop short: when it aborts, `stop()` stops waiting for results and tears
   * everything down at once (workers, Spark job, nats-server), keeps the results already in
   * (`result()`), leaves the cluster `stopped`, and rejects with {@link AbortedError}
   * (`SPS_ABORTED`, `cause`: the signal's reason). A stop under way is shared: a second `stop()`
   * waits for the same one, and any caller's signal cuts it for all.
   * @throws StopTimeoutError naming partitions whose result did not arrive; their processes are killed.
   * @throws the error that failed the cluster after start (a lost partition, Spark job or
   *   component), once every other partition's result was collected.
   */
  stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    // A second stop() while one is under way waits for the same one.
    if (!this.stopping) {
      const cut = new AbortController();
      this.cutStop = cut;
      this.stopping = this.stopRun(cut.signal).finally(() => {
        this.stopping = undefined;
        this.cutStop = undefined;
      });
    }
    const { signal } = opts;
    const cut = this.cutStop;
    if (signal && cut) {
      const onAbort = (): void => cut.abort(signal.reason);
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        void this.stopping.catch(() => {}).finally(() => signal.removeEventListener('abort', onAbort));
      }
    }
    return this.stopping;
  }

  private async stopRun(cut: AbortSignal): Promise<void> {
    const run = this.run;
    if (!run || this.status === 'idle' || this.status === 'stopped') return;
    if (this.status === 'starting' && !run.supervisor) {
      // start() tears the run down at its next step.
      run.aborted = true;
      await run.starting;
      if (cut.aborted) throw new AbortedError('stop', 'the cluster was stopped while starting', cut.reason);
      return;
    }
    this.setStatus('stopping');
    let stopFailure: Error | undefined;
    const actor = run.supervisor?.actor;
    if (actor && actor.getSnapshot().status === 'active') {
      actor.send({ type: 'STOP' });
      const done = waitFor(actor, (s) => s.status === 'done', { timeout: Infinity });
      const snap = await abandonable(done, cut).catch(() => actor.getSnapshot());
      for (const [p, r] of Object.entries(snap.context.results)) this.results.set(Number(p), r.records as Result[]);
      if (!cut.aborted && snap.value !== 'stopped') stopFailure = this.failureError(snap.context);
    }
    // A teardown step that failed (its processes are killed anyway) fails the stop, never leaves it `stopping`.
    const tornDown = await this.teardown().then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    if (cut.aborted) {
      // Cut short by the caller: what failed before is superseded by the abort, and nothing runs on.
      this.failure = undefined;
      this.setStatus('stopped');
      const missing = Array.from({ length: this.options.partitions }, (_, p) => p).filter((p) => !this.results.has(p));
      throw new AbortedError(
        'stop',
        `torn down at once${missing.length ? `; no result from partition(s) ${missing.join(', ')}` : ' after every result was in'}`,
        cut.reason,
      );
    }
    // What failed the cluster after start comes first; a failed start() has thrown its error already.
    // A lost partition's error made at the time names the partitions lost so far; the final one names all.
    const failure = stopFailure instanceof PartitionFailedError ? stopFailure : (this.failure ?? stopFailure ?? tornDown);
    this.failure = undefined;
    if (failure) {
      this.setStatus('failed', failure);
      throw failure;
    }
    this.setStatus('stopped');
  }

  /**
   * With a Spark master and `cacheResult`, the result records persisted in the Spark application,
   * once `stop()` resolved; they stay there until `unpersist()`.
   */
  get resultDataset(): ResultDataset<Result> | undefined {
    return (this.run?.launcher as { resultDataset?: ResultDataset<Result> } | undefined)?.resultDataset;
  }

  /** The records each partition returned, by partition, once `stop()` resolved. */
  result(): Map<number, Result[]> {
    return new Map(this.results);
  }

  /**
   * Calls one endpoint of one partition's current attempt over NATS and returns its reply.
   * @throws RequestError when the partition is unknown, not serving, times out, or the handler threw.
   */
  async request<T = unknown>(partition: number, endpoint: string, payload?: unknown, opts?: CallOptions): Promise<T> {
    return this.send<T>(partition, endpoint, payload, await callOptions(opts, 'cluster.request'));
  }

  /** {@link Cluster.request} with options already checked (requestAll's per-partition calls). */
  private async send<T>(partition: number, endpoint: string, payload: unknown, opts: CallOptions): Promise<T> {
    opts.signal?.throwIfAborted();
    const { nc, subject } = this.address(partition, endpoint);
    const reply = await abandonable(requestEndpoint(nc, subject, payload, opts.timeoutMs ?? this.options.requestTimeoutMs), opts.signal);
    return unwrapReply(reply, partition, endpoint) as T;
  }

  /**
   * The updates no partition could apply (option `updates`): each failed to decode, or its
   * partition's `onUpdate` threw. They are kept in the run's stream (docs/updates.md) until the run stops.
   * @throws ClusterStateError in a run without updates, or when it is not running.
   */
  async deadLetters(): Promise<DeadLetter[]> {
    const run = this.run;
    if (!this.options.updates) throw new ClusterStateError('dead letters exist only in a run with option updates');
    if (!run?.updates || !run.nc || run.nc.isClosed()) throw new ClusterStateError(`the cluster is ${this.status}; dead letters are read while it runs`);
    return readDeadLetters(run.nc, run.updates, run.subjects);
  }

  /**
   * The partition that owns `key` (a string, or an integer / bigint): FNV-1a 32 of its token modulo
   * the partitions, as option `partitionBy` places rows and the bus routes `sps.<id>.key.…` (docs/keys.md).
   * @throws KeyError (`SPS_BAD_KEY`) for a key that is not a string or an integer.
   */
  partitionOf(key: PartitionKey): number {
    return partitionOfKey(key, this.options.partitions);
  }

  /**
   * Calls `endpoint` on the partition that owns `key` (one hop: the owner is computed here).
   * @throws KeyError for a bad key; RequestError as {@link Cluster.request}.
   */
  async requestByKey<T = unknown>(key: PartitionKey, endpoint: string, payload?: unknown, opts?: CallOptions): Promise<T> {
    return this.request<T>(this.partitionOf(key), endpoint, payload, opts);
  }

  /**
   * Sends the same request to every partition at once and gathers the replies by partition.
   * A partition that fails is reported in its entry; the others' replies are still returned.
   * With `rejoin`, a partition whose attempt fails or is replaced before it answers is asked again
   * once its new attempt serves (an endpoint that calls `ctx.elasticRun`: docs/collectives.md#elastic-state).
   * @throws InvalidOptionError for an unknown option field.
   */
  async requestAll<T = unknown>(endpoint: string, payload?: unknown, given?: RequestAllOptions): Promise<Map<number, PartitionReply<T>>> {
    const opts = await requestAllOptions(given, 'cluster.requestAll');
    const timeoutMs = opts.timeoutMs ?? this.options.requestTimeoutMs;
    const { rejoin, signal } = opts;
    if (!rejoin) return requestAll(this.options.partitions, (p) => this.send<T>(p, endpoint, payload, { timeoutMs }), signal);
    const how = { timeoutMs: this.options.startTimeoutMs, ...(typeof rejoin === 'object' ? rejoin : {}) };
    return requestAll(
      this.options.partitions,
      (p) => callRejoining(this, p, endpoint, (s) => this.send<T>(p, endpoint, payload, { timeoutMs, signal: s }), how, signal),
      signal,
    );
  }

  private address(partition: number, endpoint: string): { nc: NatsConnection; subject: string } {
    const run = this.run;
    if (!run?.nc || this.status !== 'running') {
      throw new RequestError('SPS_NOT_RUNNING', partition, endpoint, `the cluster is ${this.status}, not running`);
    }
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.options.partitions) {
      throw new RequestError('SPS_UNKNOWN_PARTITION', partition, endpoint, `no such partition (the cluster has ${this.options.partitions})`);
    }
    const member = this.context?.members[partition];
    if (!member || member.state !== 'serving') {
      throw new RequestError(
        'SPS_NOT_SERVING',
        partition,
        endpoint,
        `partition is ${member ? `${member.state} (attempt ${member.attempt})` : 'not registered'}`,
      );
    }
    const unknown = unknownEndpoint(member, endpoint);
    if (unknown) throw new RequestError(unknown.code, partition, endpoint, unknown.message);
    return { nc: run.nc, subject: run.subjects.endpoint(partition, member.attempt, endpoint) };
  }

  private failureError(ctx: SupervisorContext): SparkPartitionServerError {
    const f = ctx.failure;
    if (!f) return new ClusterStateError('the supervisor stopped without saying why');
    if (f.code === 'SPS_COMPONENT_LOST') return new ComponentLostError(f.component ?? 'a component', f.detail, f.partitions);
    if (f.code === 'SPS_START_TIMEOUT') {
      const stage = f.stage ?? 'serve';
      return new StartTimeoutError(stage === 'register' ? this.options.registerTimeoutMs : this.options.startTimeoutMs, f.partitions, f.detail, stage);
    }
    if (f.code === 'SPS_STOP_TIMEOUT') return new StopTimeoutError(this.options.stopTimeoutMs, resultsMissing(ctx));
    const [first, ...others] = f.partitions;
    const alsoLost = others.length ? { partitions: others, detail: describeLost(ctx, others) } : undefined;
    const cause = f.report ? new WorkerError(first!, f.report) : undefined;
    return new PartitionFailedError(first!, f.failures ?? 0, f.lastError ?? f.detail, { alsoLost, cause, retryable: f.report?.retryable });
  }

  /** Stops everything the run started, whatever state it is in. */
  /**
   * Stops everything the run started, whatever state it is in. Every step runs even when one
   * before it failed; the first failure is thrown at the end.
   */
  private async teardown(): Promise<void> {
    const run = this.run;
    if (!run) return;
    run.closing = true;
    const failures: unknown[] = [];
    const step = async (what: () => unknown): Promise<void> => {
      try {
        await what();
      } catch (err) {
        failures.push(err);
      }
    };
    run.updatesLag?.stop();
    await step(() => Promise.all([...run.dashboards].map((d) => d.close())));
    run.dashboards.clear();
    await step(() => {
      run.unmonitor();
      run.monitor.close();
    });
    if (run.supervisor) {
      this.lastContext = run.supervisor.actor.getSnapshot().context;
      const supervisor = run.supervisor;
      run.supervisor = undefined;
      await step(() => supervisor.close());
    }
    // A launcher that could not stop its processes gracefully has them killed: none outlives the run.
    const launcher = run.launcher;
    await step(async () => {
      try {
        await launcher?.stop();
      } catch (err) {
        launcher?.killNow();
        throw err;
      }
    });
    // On a server you run, the run's streams would outlive it.
    const streams = this.options.natsUrl !== undefined && (this.options.updates !== undefined || this.options.events);
    if (streams && run.nc && !run.nc.isClosed())
      await step(() => deleteRunStreams(run.nc!, run.id, { updates: this.options.updates !== undefined, events: this.options.events }));
    if (run.nc && !run.nc.isClosed()) await run.nc.close().catch(() => {});
    await step(() => run.bus?.stop());
    if (failures.length > 0) throw failures[0];
    // Only once everything is gone: until then the process's exit still kills what is left.
    if (run.exitHook) process.removeListener('exit', run.exitHook);
  }
}

/** What each lost partition went through, for the error that names it after the first. */
function describeLost(ctx: SupervisorContext, partitions: number[]): string {
  return partitions.map((p) => `partition ${p} (failed ${ctx.lost[p]?.failures ?? 0} time(s): ${ctx.lost[p]?.error ?? 'no error reported'})`).join('; ');
}

function send(actor: SupervisorActor, event: Parameters<SupervisorActor['send']>[0]): void {
  if (actor.getSnapshot().status === 'active') actor.send(event);
}
