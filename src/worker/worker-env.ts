import { InvalidOptionError } from '../errors.js';
import { isSubjectToken } from '../protocol/subjects.js';
import type { FrameFormat } from '../transport/frames.js';
import { FRAMING, type RowFormat } from '../protocol/framing.js';
import type { LongMode } from './arrow-rows.js';
import { HTTP_CHOICES, type HttpChoice } from '../transport/http-choice.js';
import { PARTITION_HOST_ENV } from './host-messages.js';
import { eventsStream, parseUpdatesPlan, type UpdatesPlan } from '../protocol/updates.js';

/**
 * The default pulse of a run, in ms: the driver's heartbeat (option `heartbeatMs`) and the
 * workers' liveness ticks, which the driver sets to the same value.
 */
export const DEFAULT_HEARTBEAT_MS = 1000;

/**
 * The contract between a launcher and the worker process it starts: everything a worker needs
 * comes from these environment variables, so the embedded launcher and the PySpark runner start
 * workers the same way. Rows arrive on stdin as frames; results leave on fd `SPS_RESULT_FD`. No
 * secret is among them: those arrive once on the pipe `SPS_SECRET_FD` (see `worker-secrets.ts`).
 */
export const WORKER_ENV = {
  clusterId: 'SPS_CLUSTER_ID',
  partitions: 'SPS_PARTITIONS',
  partition: 'SPS_PARTITION',
  attempt: 'SPS_ATTEMPT',
  /** The inherited fd the worker reads its secrets from once (bus access, control token, registration proof). */
  secretFd: 'SPS_SECRET_FD',
  serverModule: 'SPS_SERVER_MODULE',
  /** The server module as the user named it, when `SPS_SERVER_MODULE` is its compiled form: errors name it. */
  serverSource: 'SPS_SERVER_SOURCE',
  serverExport: 'SPS_SERVER_EXPORT',
  config: 'SPS_CONFIG',
  /** How rows arrive on stdin: `msgpack` / `json` batch frames, or `arrow` (an Arrow IPC stream). */
  rowFormat: 'SPS_ROW_FORMAT',
  /** How 64-bit integers of Arrow rows become row values: `number` (default) or `bigint`. */
  longs: 'SPS_LONGS',
  resultFd: 'SPS_RESULT_FD',
  resultFormat: 'SPS_RESULT_FORMAT',
  bindHost: 'SPS_BIND_HOST',
  advertiseHost: 'SPS_ADVERTISE_HOST',
  httpPort: 'SPS_HTTP_PORT',
  /** Leave (exit 1) when the driver's heartbeat has been silent this long; 0: never. */
  driverTimeoutMs: 'SPS_DRIVER_TIMEOUT_MS',
  /** How long draining waits for handlers still running before it builds the result anyway. */
  drainTimeoutMs: 'SPS_DRAIN_TIMEOUT_MS',
  /** Default timeout of `ctx.request` and of registering. */
  requestTimeoutMs: 'SPS_REQUEST_TIMEOUT_MS',
  /** File descriptor on which the worker writes a liveness tick every `SPS_TICK_MS`; unset: none. */
  tickFd: 'SPS_TICK_FD',
  tickMs: 'SPS_TICK_MS',
  /** How collectives send their data unless a call says otherwise: `auto` (default), `nats` or `direct`. */
  collectiveTransport: 'SPS_COLLECTIVE_TRANSPORT',
  /** `1`: the server module was compiled with source maps; stack traces use them from its import on. */
  sourceMaps: 'SPS_SOURCE_MAPS',
  /** `0`: do not count requests for the dashboard (the worker then sends no `stats`); default on. */
  requestStats: 'SPS_REQUEST_STATS',
  /** `1`: the driver inspects; the worker reports its actor's transitions on `ctl.inspect.<partition>`. */
  inspect: 'SPS_INSPECT',
  /** The level the worker logs at (`debug`, `info`, `warn`, `error`, `silent`); default `info`. */
  logLevel: 'SPS_LOG_LEVEL',
  /** Which HTTP server: `auto` (default: uWebSockets.js where it loads, else node:http), `uws` or `node`. */
  http: 'SPS_HTTP',
  /** Live updates: the run's stream and first sequence, as JSON (`UpdatesPlan`); unset: none. */
  updates: 'SPS_UPDATES',
  /** `1`: the run has an events stream (option `events`), and `ctx.publish` stores to it. */
  events: 'SPS_EVENTS',
  /** `1`: this process is a partition host (option `isolation: 'thread'`): it runs partitions as its threads. */
  partitionHost: PARTITION_HOST_ENV,
  /**
   * `1`: this process is a spare (option `spareWorker`): it loads its modules, then waits on
   * `SPS_SECRET_FD` for the partition, attempt and secrets that make it an attempt; until then it
   * has no `SPS_PARTITION` or `SPS_ATTEMPT`.
   */
  spare: 'SPS_SPARE',
} as const;

/** The parsed worker environment. */
export interface WorkerEnv {
  clusterId: string;
  partitions: number;
  partition: number;
  attempt: number;
  /** The fd its secrets arrive on (read with `readWorkerSecrets`). */
  secretFd: number;
  serverModule: string;
  /** What errors call the server module: the user's own file when it was compiled. */
  serverSource: string;
  serverExport: string;
  config: unknown;
  rowFormat: RowFormat;
  longs: LongMode;
  resultFd: number;
  resultFormat: FrameFormat;
  /** Address to bind HTTP to; `auto`: this executor's own address (see `executorAddress`). */
  bindHost: string;
  /** Host to register; `undefined`: the bound address. */
  advertiseHost: string | undefined;
  httpPort: number;
  driverTimeoutMs: number;
  drainTimeoutMs: number;
  requestTimeoutMs: number;
  tickFd: number | undefined;
  tickMs: number;
  sourceMaps: boolean;
  requestStats: boolean;
  collectiveTransport: 'auto' | 'nats' | 'direct';
  inspect: boolean;
  http: HttpChoice;
  /** The run's live updates, when it has them. */
  updates: UpdatesPlan | undefined;
  /** The run's events stream (option `events`), when it has one. */
  events: string | undefined;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new InvalidOptionError(name, 'environment variable is not set');
  return v;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback?: number): number {
  const raw = env[name];
  if ((raw === undefined || raw === '') && fallback !== undefined) return fallback;
  const v = Number(required(env, name));
  if (!Number.isInteger(v) || v < 0) throw new InvalidOptionError(name, `must be a non-negative integer, got "${raw}"`);
  return v;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[]): T {
  const v = env[name] || allowed[0]!;
  if (!allowed.includes(v as T)) throw new InvalidOptionError(name, `must be ${allowed.map((a) => `"${a}"`).join(' or ')}, got "${v}"`);
  return v as T;
}

function updatesPlan(env: NodeJS.ProcessEnv): UpdatesPlan | undefined {
  const raw = env[WORKER_ENV.updates];
  if (!raw) return undefined;
  try {
    return parseUpdatesPlan(raw);
  } catch {
    throw new InvalidOptionError(WORKER_ENV.updates, 'is not an updates plan ({"stream": name, "startSeq": n ≥ 1})');
  }
}

/** Reads and validates the worker environment; errors name the variable that was wrong, never its value. */
export function readWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const clusterId = required(env, WORKER_ENV.clusterId);
  if (!isSubjectToken(clusterId)) throw new InvalidOptionError(WORKER_ENV.clusterId, 'may only hold letters, digits, "_" and "-"');
  let config: unknown = undefined;
  const rawConfig = env[WORKER_ENV.config];
  if (rawConfig) {
    try {
      config = JSON.parse(rawConfig);
    } catch (err) {
      throw new InvalidOptionError(WORKER_ENV.config, `is not JSON (${(err as Error).message})`);
    }
  }
  const bindHost = env[WORKER_ENV.bindHost] || '127.0.0.1';
  const partitions = integer(env, WORKER_ENV.partitions);
  const partition = integer(env, WORKER_ENV.partition);
  if (partition >= partitions) throw new InvalidOptionError(WORKER_ENV.partition, `${partition} is not below ${WORKER_ENV.partitions}=${partitions}`);
  return {
    clusterId,
    partitions,
    partition,
    attempt: integer(env, WORKER_ENV.attempt),
    secretFd: integer(env, WORKER_ENV.secretFd),
    serverModule: required(env, WORKER_ENV.serverModule),
    serverSource: env[WORKER_ENV.serverSource] || required(env, WORKER_ENV.serverModule),
    serverExport: env[WORKER_ENV.serverExport] || 'default',
    config,
    rowFormat: oneOf(env, WORKER_ENV.rowFormat, FRAMING.rowFormats),
    longs: oneOf(env, WORKER_ENV.longs, ['number', 'bigint'] as const),
    resultFd: integer(env, WORKER_ENV.resultFd, 3),
    resultFormat: oneOf(env, WORKER_ENV.resultFormat, FRAMING.resultFormats),
    bindHost,
    advertiseHost: env[WORKER_ENV.advertiseHost] || undefined,
    httpPort: integer(env, WORKER_ENV.httpPort, 0),
    driverTimeoutMs: integer(env, WORKER_ENV.driverTimeoutMs, 0),
    drainTimeoutMs: integer(env, WORKER_ENV.drainTimeoutMs, 30_000),
    requestTimeoutMs: integer(env, WORKER_ENV.requestTimeoutMs, 10_000),
    tickFd: env[WORKER_ENV.tickFd] ? integer(env, WORKER_ENV.tickFd) : undefined,
    tickMs: integer(env, WORKER_ENV.tickMs, DEFAULT_HEARTBEAT_MS),
    sourceMaps: env[WORKER_ENV.sourceMaps] === '1',
    requestStats: oneOf(env, WORKER_ENV.requestStats, ['1', '0'] as const) === '1',
    collectiveTransport: oneOf(env, WORKER_ENV.collectiveTransport, ['auto', 'nats', 'direct'] as const),
    inspect: env[WORKER_ENV.inspect] === '1',
    http: oneOf(env, WORKER_ENV.http, HTTP_CHOICES),
    updates: updatesPlan(env),
    events: env[WORKER_ENV.events] === '1' ? eventsStream(clusterId) : undefined,
  };
}
