import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, errors, tokenAuthenticator, usernamePasswordAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/nats-core';
import { RequestError, SparkPartitionServerError } from '../errors.js';
import { nkeyAuthenticator } from './nkey-auth.js';
import { decodeReply, encodeRequest, type EndpointReply } from '../protocol/messages.js';
import type { BusAccess } from '../security/bus-access.js';
import type { Member, WireError } from '../protocol/types.js';

export type { NatsConnection } from '@nats-io/nats-core';

/** How long a connection keeps reconnecting by default. */
export const DEFAULT_RECONNECT_WINDOW_MS = 30_000;
const RECONNECT_WAIT_MS = 250;

/** nats.js connection options for one identity's bus access. */
export function connectionOptions(access: BusAccess, name: string): ConnectionOptions {
  // Reconnect every 250 ms for the whole window: a restarted server within it is survived, and
  // subscriptions come back by themselves.
  const windowMs = access.reconnectWindowMs ?? DEFAULT_RECONNECT_WINDOW_MS;
  const o: ConnectionOptions = {
    servers: access.url.split(',').map((u) => u.trim()),
    name,
    maxReconnectAttempts: Math.max(1, Math.ceil(windowMs / RECONNECT_WAIT_MS)),
    reconnectTimeWait: RECONNECT_WAIT_MS,
  };
  const a = access.auth;
  if (a) {
    const enc = new TextEncoder();
    if ('nkeySeed' in a) o.authenticator = nkeyAuthenticator(a.nkeySeed);
    else if ('token' in a) o.authenticator = tokenAuthenticator(a.token);
    else if ('user' in a) o.authenticator = usernamePasswordAuthenticator(a.user, a.pass);
    else o.authenticator = credsAuthenticator(enc.encode(a.creds));
  }
  // An object (even empty) means: TLS only, verified against the system's CAs or `ca`.
  if (access.tls || access.url.split(',').some((u) => u.trim().startsWith('tls://'))) o.tls = { ...access.tls };
  if (access.inboxPrefix) o.inboxPrefix = access.inboxPrefix;
  return o;
}

/**
 * Connects to the bus as one identity. A refused login says which identity was refused, never
 * with what secret.
 */
export async function connectBus(access: BusAccess | string, name: string): Promise<NatsConnection> {
  const a = typeof access === 'string' ? { url: access } : access;
  try {
    return await connect(connectionOptions(a, name));
  } catch (err) {
    const e = err as Error;
    throw new SparkPartitionServerError('SPS_BUS_CONNECT', `${name} could not connect to NATS at ${a.url}: ${e.message}`, { cause: err });
  }
}

/**
 * Sends one request to a partition endpoint and returns its reply, never throwing: transport
 * failures become `{ ok: false }` replies with codes of their own, so scatter/gather can report each
 * partition's failure next to the others' answers.
 */
export async function requestEndpoint(nc: NatsConnection, subject: string, body: unknown, timeoutMs: number): Promise<EndpointReply> {
  try {
    const msg = await nc.request(subject, encodeRequest(body), { timeout: timeoutMs });
    return decodeReply(subject, msg.data);
  } catch (err) {
    if ((err instanceof errors.RequestError && err.isNoResponders()) || err instanceof errors.NoRespondersError) {
      return { ok: false, error: { code: 'SPS_NO_RESPONDER', message: 'nobody serves this endpoint (partition not serving, or restarted)' } };
    }
    if (err instanceof errors.TimeoutError) {
      return { ok: false, error: { code: 'SPS_REQUEST_TIMEOUT', message: `no reply within ${timeoutMs} ms` } };
    }
    if (err instanceof errors.PermissionViolationError) {
      return { ok: false, error: { code: 'SPS_PERMISSION_DENIED', message: `the bus refused this identity: ${err.message}` } };
    }
    const e = err as Error & { code?: string };
    return { ok: false, error: { code: typeof e.code === 'string' ? e.code : 'SPS_REQUEST_FAILED', message: e.message } };
  }
}

/**
 * The error for an endpoint a partition does not serve, or `undefined` when it does. Callers that
 * follow the membership check before sending (a member's registration lists its endpoints), since
 * an attempt subject without a handler has no responder at all.
 */
export function unknownEndpoint(m: Pick<Member, 'partition' | 'endpoints'>, endpoint: string): WireError | undefined {
  if (m.endpoints.includes(endpoint)) return undefined;
  return { code: 'SPS_UNKNOWN_ENDPOINT', message: `partition ${m.partition} has no endpoint "${endpoint}" (has: ${m.endpoints.join(', ') || 'none'})` };
}

/** Unwraps a reply, throwing a {@link RequestError} for a failed one. */
export function unwrapReply(reply: EndpointReply, partition: number, endpoint: string): unknown {
  if (reply.ok) return reply.body;
  throw new RequestError(reply.error.code, partition, endpoint, reply.error.message);
}
