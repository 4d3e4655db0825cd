import { createActor, fromPromise, waitFor, type Subscription as ActorSubscription } from 'xstate';
import { partitionServerMachine } from '../actors/partition-server.js';
import { toFailureReport, type FailureReport, type PartitionState } from '../protocol/types.js';
import type { EndpointHandler, PartitionContext } from './context.js';
import type { PartitionServer } from './partition-server.js';
import { SparkPartitionServerError } from '../errors.js';
import { connectBus, type NatsConnection } from '../transport/bus.js';
import type { HttpServer } from '../transport/http.js';
import { decodeRegisterAck, decodeShutdown, encodeRegistration, encodeState } from '../protocol/messages.js';
import { Peers } from './peers.js';
import { callOptions } from '../protocol/call-options.js';
import { isSubjectToken, subjectsFor } from '../protocol/subjects.js';
import { partitionOfKey } from '../protocol/key-partition.js';
import type { WorkerEnv } from './worker-env.js';
import type { WorkerSecrets } from '../security/worker-secrets.js';
import { loadServer } from './load-server.js';
import { mountControlRoutes } from './control-routes.js';
import { executorAddress } from './executor-address.js';
import { serveEndpoints, type ServedEndpoints } from './endpoints.js';
import { writeResults, type ResultChannel } from './result-channel.js';
import { RowStream } from './rows.js';
import { InFlight } from '../transport/in-flight.js';
import { watchDriver, type DriverWatch } from './driver-watch.js';
import { formatFailure, formatLogLine } from '../log/log-format.js';
import type { Logger } from '../log/logger.js';
import { finishRequests } from './finish-requests.js';
import { publishTransitions } from './inspection.js';
import { Communicator } from './collectives/communicator.js';
import { collectiveMethods } from './collectives/methods.js';
import { createElasticState, elasticRun } from './elastic/elastic-state.js';
import { RequestStats, reportStats } from './request-stats.js';
import { REQUEST_RECORDER, RequestRecorder } from './request-recorder.js';
import { HTTP_CHOICE } from './http-partition-server.js';
import type { UpdatesConsumer } from './updates-consumer.js';
import { eventPublisher } from './events-publisher.js';

/** Counters a partition host keeps about the traffic it refused. */
export interface HostCounters {
  malformed: number;
  refusedShutdowns: number;
  /** One-way messages (no reply subject) whose handling failed; each is also logged at warn. */
  oneWayFailed: number;
}

/**
 * Runs one partition in this process: loads the user's server, drives the partition server actor
 * with NATS, HTTP, stdin and the result channel as its effects, and resolves with the final state;
 * `loaded` is called once its server module is loaded.
 */
export async function hostPartition(
  env: WorkerEnv,
  secrets: WorkerSecrets,
  logger: Logger,
  results: ResultChannel = env.resultFd,
  loaded?: () => void,
): Promise<{ state: PartitionState; error?: FailureReport }> {
  const subjects = subjectsFor(env.clusterId);
  const { partition, attempt } = env;
  const counters: HostCounters = { malformed: 0, refusedShutdowns: 0, oneWayFailed: 0 };
  const nc: NatsConnection = await connectBus(secrets.bus, `sps-${env.clusterId}-p${partition}-a${attempt}`);
  const bindHost = env.bindHost === 'auto' ? await executorAddress(secrets.bus.url) : env.bindHost;
  const advertiseHost = env.advertiseHost ?? bindHost;
  const comm = new Communicator(nc, subjects, partition, attempt, env.partitions);
  comm.defaultTransport = env.collectiveTransport;
  comm.busEncrypted = secrets.bus.tls !== undefined || secrets.bus.url.startsWith('tls://');
  const peers = new Peers({
    nc,
    subjects,
    partition,
    partitions: env.partitions,
    requestTimeoutMs: env.requestTimeoutMs,
    onView: (generation, members) => {
      comm.setView(generation, members);
      served?.view(members);
    },
    onMalformed: () => counters.malformed++,
  });

  let served: ServedEndpoints | undefined;
  // Where this attempt listens (from `listen`), for its micro service metadata.
  let address: { host: string; port: number | null } = { host: advertiseHost, port: null };
  let http: HttpServer | undefined;
  let server: PartitionServer | undefined;
  let handlers: Record<string, EndpointHandler> = {};
  // Async endpoint handlers still running; draining waits for them (HTTP counts its own).
  const endpointsInFlight = new InFlight();
  let driverWatch: DriverWatch | undefined;
  // Each answered request recorded once: `$SRV.STATS` reads it, and the driver's dashboard while serving.
  const recorder = await RequestRecorder.create({ histograms: env.requestStats });
  const requestStats = env.requestStats ? new RequestStats(recorder) : undefined;
  let statsReports: { stop(): void } | undefined;
  let updates: UpdatesConsumer | undefined;

  const ctx: PartitionContext = {
    ...collectiveMethods(comm),
    get generation() {
      return comm.stats.generation;
    },
    collectiveStats: () => ({ ...comm.stats }),
    elastic: (initial) => createElasticState(comm, initial),
    elasticRun,
    partition,
    attempt,
    clusterId: env.clusterId,
    partitions: env.partitions,
    config: env.config,
    nats: nc,
    peers: () => peers.members,
    waitForPeers: async (opts) => peers.waitForPeers(await callOptions(opts, 'ctx.waitForPeers')),
    request: async (target, endpoint, payload, opts) => peers.request(target, endpoint, payload, await callOptions(opts, 'ctx.request')),
    requestAll: async (endpoint, payload, opts) => peers.requestAll(endpoint, payload, await callOptions(opts, 'ctx.requestAll')),
    partitionOf: (key) => partitionOfKey(key, env.partitions),
    // Async, so a bad key rejects the call as any other failure of it does.
    requestByKey: async (key, endpoint, payload, opts) =>
      peers.request(partitionOfKey(key, env.partitions), endpoint, payload, await callOptions(opts, 'ctx.requestByKey')),
    // Formatted here, so errors show their stack and objects never throw.
    log: (...args: unknown[]) => logger.info(formatLogLine(args)),
    logger,
    updates: () => updates?.status(),
    publish: eventPublisher(nc, subjects, partition, env.events),
  };
  if (requestStats) Object.defineProperty(ctx, REQUEST_RECORDER, { value: recorder });
  Object.defineProperty(ctx, HTTP_CHOICE, { value: env.http });

  // Subscribe before registering, so no broadcast sent after the supervisor accepts us is missed.
  comm.listen();
  peers.listen();
  // The direct collective socket, on the address HTTP binds to; its port goes into the registration.
  // On a TLS bus it speaks TLS with a certificate this attempt makes meanwhile (a cold start takes
  // a few hundred ms), registered with the port; registering fails if it could not be made.
  const securing = comm.busEncrypted ? comm.secureDirect() : undefined;
  securing?.catch(() => {});
  const peerPort = await comm.listenDirect(bindHost);

  nc.subscribe(subjects.shutdown, {
    callback: (err, msg) => {
      if (err) return;
      try {
        // Only the driver's credentials may publish here: the server checked who sent it.
        decodeShutdown(msg.subject, msg.data);
        actor.send({ type: 'SHUTDOWN' });
      } catch {
        counters.malformed++;
      }
    },
  });

  if (env.driverTimeoutMs > 0) {
    driverWatch = watchDriver(
      nc,
      subjects.heartbeat,
      env.driverTimeoutMs,
      (error) => {
        if (actor.getSnapshot().status === 'active') actor.send({ type: 'FAIL', error });
      },
      () => counters.malformed++,
    );
  }

  const actor = createActor(
    partitionServerMachine.provide({
      actors: {
        initPartition: fromPromise(async () => {
          server = await loadServer(env.serverModule, env.serverExport, env.config, env.serverSource);
          loaded?.();
          const rows = new RowStream<never>(process.stdin, env.rowFormat, `partition ${partition} rows on stdin`, env.longs);
          await server.initPartition(rows, ctx);
          await rows.drainRest();
        }),
        listen: fromPromise(async () => {
          http = server!.createHttpServer(ctx);
          if (!http) return { host: advertiseHost, port: null };
          mountControlRoutes(http, {
            token: secrets.controlToken,
            health: () => ({ clusterId: env.clusterId, partition, attempt, state: currentState(), ...counters }),
            shutdown: () => actor.send({ type: 'SHUTDOWN' }),
            refused: () => counters.refusedShutdowns++,
          });
          const bound = await http.listen(bindHost, env.httpPort);
          return { host: advertiseHost, port: bound.port };
        }),
        register: fromPromise(async ({ input }) => {
          address = { host: input.host, port: input.port };
          handlers = server!.endpoints(ctx);
          for (const name of Object.keys(handlers)) {
            if (!isSubjectToken(name))
              throw new SparkPartitionServerError('SPS_BAD_ENDPOINT', `endpoint name "${name}" may only hold letters, digits, "_" and "-"`);
          }
          const msg = await nc.request(
            subjects.register(partition),
            encodeRegistration({
              attempt,
              host: input.host,
              port: input.port,
              pid: process.pid,
              endpoints: Object.keys(handlers),
              peerPort,
              peerCert: await securing,
              proof: secrets.proof,
            }),
            { timeout: env.requestTimeoutMs },
          );
          const ack = decodeRegisterAck(msg.subject, msg.data);
          if (!ack.accepted) throw new SparkPartitionServerError('SPS_REGISTER_REFUSED', `registration refused: ${ack.reason ?? 'no reason given'}`);
          peers.setWhole(ack.epoch, ack.generation, ack.members);
          // The driver answered: from now on its silence means it is gone.
          driverWatch?.start();
          return { shutdown: ack.shutdown };
        }),
        openEndpoints: fromPromise(async () => {
          served = await serveEndpoints(nc, { subjects, partition, attempt, ...address }, handlers, ctx, {
            onMalformed: () => counters.malformed++,
            onOneWayFailed: (endpoint, e) => {
              counters.oneWayFailed++;
              logger.warn({ endpoint, code: e.code }, `one-way message to endpoint "${endpoint}" failed: [${e.code}] ${e.message}`);
            },
            inFlight: endpointsInFlight,
            recorder,
          });
          if (requestStats) statsReports = reportStats(nc, subjects.stats(partition), requestStats, attempt, env.tickMs);
          served.view(peers.members);
          if (env.updates) {
            if (!server!.handlesUpdates()) {
              throw new SparkPartitionServerError(
                'SPS_NO_UPDATE_HANDLER',
                'the cluster has option updates, but the partition server has neither an onUpdate method nor an update option',
              );
            }
            // Loaded on first use: a run without updates never loads the JetStream client.
            const { consumeUpdates } = await import('./updates-consumer.js');
            updates = await consumeUpdates(
              nc,
              env.updates,
              subjects,
              partition,
              (update) => server!.onUpdate(update, ctx),
              (u, e) => logger.warn({ key: u.key, seq: u.seq, code: e.code }, `update ${u.seq} went to the dead letters: [${e.code}] ${e.message}`),
              // A partition that can no longer apply its updates would serve a stale state: it fails instead.
              (e) => {
                if (actor.getSnapshot().status === 'active') actor.send({ type: 'FAIL', error: toFailureReport(e, e.code) });
              },
            );
          }
        }),
        drain: fromPromise(async () => {
          // No update is applied once the partition drains: its result reflects what was applied until then.
          await updates?.stop();
          await finishRequests({ served, inFlight: endpointsInFlight }, http, env.drainTimeoutMs, (line) => logger.warn(line));
          await server!.onShutdown(ctx);
          // Encode and channel errors come back as SPS_RESULT_WRITE and fail the partition.
          await writeResults(results, env.resultFormat, await server!.buildResult(ctx));
        }),
      },
      actions: {
        reportState: ({ context }, params) => {
          const error = params.state === 'failed' ? context.error : undefined;
          if (error) logger.error({ code: error.code }, formatFailure(error));
          if (!nc.isClosed()) nc.publish(subjects.state(partition), encodeState({ attempt, state: params.state, pid: process.pid, error }));
        },
      },
    }),
    // Transitions go to the driver's inspector only when it asked for them: no cost otherwise.
    { input: { partition, attempt }, inspect: env.inspect ? publishTransitions(nc, subjects.inspect(partition), attempt) : undefined },
  );

  const currentState = (): PartitionState => {
    const v = actor.getSnapshot().value;
    return (typeof v === 'string' ? v : Object.keys(v)[0]) as PartitionState;
  };

  // A lost NATS connection means the supervisor can no longer reach us: fail rather than linger.
  void nc.closed().then((err) => {
    if (actor.getSnapshot().status === 'active') {
      actor.send({ type: 'FAIL', error: { code: 'SPS_NATS_CLOSED', message: `NATS connection closed${err ? `: ${err.message}` : ''}` } });
    }
  });

  const sub: ActorSubscription = actor.subscribe({ error: () => {} });
  actor.start();
  const final = await waitFor(actor, (s) => s.status === 'done', { timeout: Infinity });
  sub.unsubscribe();
  statsReports?.stop();
  driverWatch?.stop();
  comm.close();
  const state = final.value as PartitionState;
  if (!nc.isClosed()) {
    await nc.flush().catch(() => {});
    await nc.close().catch(() => {});
  }
  return { state, error: final.context.error };
}
