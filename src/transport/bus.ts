import { connect } from '@nats-io/transport-node';
import { errors, type NatsConnection } from '@nats-io/nats-core';
import { RequestError } from '../errors.js';
import { decodeReply, encodeRequest, type EndpointReply } from './messages.js';

export type { NatsConnection } from '@nats-io/nats-core';

/** Connects to NATS with settings suited to a short-lived cluster member. */
export async function connectBus(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url, name, maxReconnectAttempts: 10, reconnectTimeWait: 250 });
}

/**
 * Sends one request to a partition endpoint and returns its reply, never throwing: transport
 * failures become `{ ok: false }` replies with codes of their own, so scatter/gather can report each
 * partition's failure next to the others' answers.
 */
export async function requestEndpoint(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  timeoutMs: number,
): Promise<EndpointReply> {
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
    const e = err as Error & { code?: string };
    return { ok: false, error: { code: typeof e.code === 'string' ? e.code : 'SPS_REQUEST_FAILED', message: e.message } };
  }
}

/** Unwraps a reply, throwing a {@link RequestError} for a failed one. */
export function unwrapReply(reply: EndpointReply, partition: number, endpoint: string): unknown {
  if (reply.ok) return reply.body;
  throw new RequestError(reply.error.code, partition, endpoint, reply.error.message);
}
