import { Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { createActor, fromPromise, waitFor, type Subscription as ActorSubscription } from 'xstate';
import type { Subscription } from '@nats-io/nats-core';
import { partitionServerMachine } from '../actors/partition-server.js';
import { toWireError, type Member, type PartitionState } from '../actors/types.js';
import type { PartitionContext } from '../api/context.js';
import type { PartitionServer } from '../api/partition-server.js';
import { RequestError, SparkPartitionServerError } from '../errors.js';
import { connectBus, requestEndpoint, unwrapReply, type NatsConnection } from '../transport/bus.js';
import { encodeFrame, readBatches } from '../transport/frames.js';
import { httpResponse, type HttpServer } from '../transport/http.js';
import {
  decodeMembers,
  decodeRegisterAck,
  decodeRequest,
  decodeShutdown,
  encodeRegistration,
  encodeReply,
  encodeState,
} from '../transport/messages.js';
import { isSubjectToken, subjectsFor } from '../transport/subjects.js';
import type { WorkerEnv } from './worker-env.js';
import { loadServer } from './load-server.js';

/** How many result records go into one frame on the result channel. */
const RESULT_BATCH = 1024;

/** Checks a presented token against the cluster's in constant time. */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Counters a partition host keeps about the traffic it refused. */
export interface HostCounters {
  malformed: number;
  refusedShutdowns: number;
}

/**
 * Runs one partition in this process: loads the user's server, drives the partition server actor
 * with NATS, HTTP, stdin and the result channel as its effects, and resolves with the final state.
 */
export async function hostPartition(env: WorkerEnv, log: (...args: unknown[]) => void): Promise<{ state: PartitionState; error?: string }> {
  const subjects = subjectsFor(env.clusterId);
  const { partition, attempt } = env;
  const counters: HostCounters = { malformed: 0, refusedShutdowns: 0 };
  const nc: NatsConnection = await connectBus(env.natsUrl, `sps-${env.clusterId}-p${partition}-a${attempt}`);
  let members: Member[] = [];
  let epoch = -1;
  const peerWaiters = new Set<() => void>();
  const setMembers = (e: number, m: Member[]): void => {
    if (e <= epoch) return;
    epoch = e;
    members = m;
    for (const w of peerWaiters) w();
  };

  let endpointSub: Subscription | undefined;
  let http: HttpServer | undefined;
  let server: PartitionServer | undefined;

  const ctx: PartitionContext = {
    partition,
    attempt,
    clusterId: env.clusterId,
    partitions: env.partitions,
    config: env.config,
    nats: nc,
    peers: () => members,
    waitForPeers: (timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const serving = members.filter((m) => m.state === 'serving');
          if (serving.length < env.partitions) return false;
          peerWaiters.delete(check);
          clearTimeout(timer);
          resolve(members);
          return true;
        };
        const timer = setTimeout(() => {
          peerWaiters.delete(check);
          reject(new SparkPartitionServerError('SPS_PEERS_TIMEOUT', `partition ${partition}: not all ${env.partitions} peers serving within ${timeoutMs} ms`));
        }, timeoutMs);
        if (!check()) peerWaiters.add(check);
      }),
    request: async <T>(target: number, endpoint: string, payload?: unknown, timeoutMs = 10_000): Promise<T> => {
      const m = members.find((x) => x.partition === target);
      if (!m) throw new RequestError('SPS_UNKNOWN_PARTITION', target, endpoint, `no member in the membership view seen by partition ${partition}`);
      const reply = await requestEndpoint(nc, subjects.endpoint(target, m.attempt, endpoint), payload, timeoutMs);
      return unwrapReply(reply, target, endpoint) as T;
    },
    log,
  };

  // Subscribe before registering, so no broadcast sent after the supervisor accepts us is missed.
  nc.subscribe(subjects.members, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const v = decodeMembers(msg.subject, msg.data);
        setMembers(v.epoch, v.members);
      } catch {
        counters.malformed++;
      }
    },
  });

  nc.subscribe(subjects.shutdown, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const { token } = decodeShutdown(msg.subject, msg.data);
        if (!tokenMatches(env.token, token)) {
          counters.refusedShutdowns++;
          log('refused a shutdown with a wrong token');
          return;
        }
        actor.send({ type: 'SHUTDOWN' });
      } catch {
        counters.malformed++;
      }
    },
  });

  const actor = createActor(
    partitionServerMachine.provide({
      actors: {
        initPartition: fromPromise(async () => {
          server = await loadServer(env.serverModule, env.serverExport, env.config);
          const rows = readBatches(process.stdin, env.rowFormat, `partition ${partition} rows on stdin`);
          await server.initPartition(rows as AsyncIterable<never>, ctx);
          // Rows the server did not read are drained, so the feeding side never blocks on us.
          for await (const _ of rows);
        }),
        listen: fromPromise(async () => {
          http = server!.createHttpServer(ctx);
          if (!http) return { host: env.advertiseHost, port: null };
          http.route('get', '/control/health', () => ({
            clusterId: env.clusterId,
            partition,
            attempt,
            state: currentState(),
            http: http!.implementation,
          }));
          http.route('post', '/control/shutdown', (req) => {
            const bearer = req.headers.authorization?.replace(/^Bearer\s+/i, '');
            if (!tokenMatches(env.token, req.headers['x-sps-token'] ?? bearer)) {
              counters.refusedShutdowns++;
              return httpResponse(403, { error: { code: 'SPS_BAD_TOKEN', message: 'shutdown refused: missing or wrong cluster token' } });
            }
            // Answer first: draining closes this server.
            setImmediate(() => actor.send({ type: 'SHUTDOWN' }));
            return httpResponse(202, { partition, attempt, state: 'draining' });
          });
          const bound = await http.listen(env.bindHost, env.httpPort);
          return { host: env.advertiseHost, port: bound.port };
        }),
        register: fromPromise(async ({ input }) => {
          const handlers = server!.endpoints(ctx);
          for (const name of Object.keys(handlers)) {
            if (!isSubjectToken(name)) throw new SparkPartitionServerError('SPS_BAD_ENDPOINT', `endpoint name "${name}" may only hold letters, digits, "_" and "-"`);
          }
          const msg = await nc.request(
            subjects.register,
            encodeRegistration({ partition, attempt, host: input.host, port: input.port, pid: process.pid, endpoints: Object.keys(handlers) }),
            { timeout: 30_000 },
          );
          const ack = decodeRegisterAck(msg.subject, msg.data);
          if (!ack.accepted) throw new SparkPartitionServerError('SPS_REGISTER_REFUSED', `registration refused: ${ack.reason ?? 'no reason given'}`);
          setMembers(0, ack.members);
          return { shutdown: ack.shutdown };
        }),
        openEndpoints: fromPromise(async () => {
          const handlers = server!.endpoints(ctx);
          endpointSub = nc.subscribe(subjects.endpoints(partition, attempt), {
            callback: (err, msg) => {
              if (err || !msg.reply) return;
              const name = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
              const handler = handlers[name];
              let payload: unknown;
              try {
                payload = decodeRequest(msg.subject, msg.data);
              } catch (e) {
                counters.malformed++;
                msg.respond(encodeReply({ ok: false, error: toWireError(e) }));
                return;
              }
              if (!handler) {
                msg.respond(encodeReply({ ok: false, error: { code: 'SPS_UNKNOWN_ENDPOINT', message: `partition ${partition} has no endpoint "${name}" (has: ${Object.keys(handlers).join(', ') || 'none'})` } }));
                return;
              }
              Promise.resolve()
                .then(() => handler(payload, ctx))
                .then(
                  (body) => msg.respond(encodeReply({ ok: true, body })),
                  (e) => msg.respond(encodeReply({ ok: false, error: toWireError(e) })),
                );
            },
          });
          await nc.flush();
        }),
        drain: fromPromise(async () => {
          await http?.close();
          await endpointSub?.drain();
          await server!.onShutdown(ctx);
          await writeResults(env.resultFd, env.resultFormat, await server!.buildResult(ctx));
        }),
      },
      actions: {
        reportState: ({ context }, params) => {
          const error = params.state === 'failed' ? context.error : undefined;
          if (error) log(`failed: [${error.code}] ${error.message}`);
          if (!nc.isClosed()) nc.publish(subjects.state, encodeState({ partition, attempt, state: params.state, pid: process.pid, error }));
        },
      },
    }),
    { input: { partition, attempt } },
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
  const state = final.value as PartitionState;
  if (!nc.isClosed()) {
    await nc.flush().catch(() => {});
    await nc.close().catch(() => {});
  }
  return { state, error: final.context.error ? `[${final.context.error.code}] ${final.context.error.message}` : undefined };
}

/** Writes the result records as frames on the result channel and closes it. */
async function writeResults(fd: number, format: 'msgpack' | 'json', records: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
  const out = new Socket({ fd, readable: false, writable: true });
  const done = new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
  let batch: unknown[] = [];
  for await (const record of records as AsyncIterable<unknown>) {
    batch.push(record);
    if (batch.length >= RESULT_BATCH) {
      if (!out.write(encodeFrame(batch, format))) await new Promise((r) => out.once('drain', r));
      batch = [];
    }
  }
  if (batch.length > 0) out.write(encodeFrame(batch, format));
  out.end();
  await done;
}
