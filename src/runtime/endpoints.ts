import type { Msg, Subscription } from '@nats-io/nats-core';
import { performance } from 'node:perf_hooks';
import { toWireError } from '../protocol/types.js';
import type { EndpointHandler, PartitionContext } from '../api/context.js';
import type { NatsConnection } from '../transport/bus.js';
import { decodeRequest, encodeReply } from '../protocol/messages.js';
import type { InFlight } from '../transport/in-flight.js';
import type { RequestStats } from './request-stats.js';

/** What {@link serveEndpoints} reports to, and counts in, its host. */
export interface EndpointHooks {
  /** A request that did not decode (it gets an error reply). */
  onMalformed(): void;
  /** Where handlers still running are counted, so draining can wait for them. */
  inFlight: InFlight;
  /** Where answered requests are counted (name `nats <endpoint>`), when the host keeps counters. */
  stats?: RequestStats;
}

/**
 * Encodes a handler's value as a reply; a value msgpack cannot carry (a BigInt beyond 64 bits, a
 * circular object, a function, a symbol) becomes an `SPS_ENCODE` error reply instead of a throw,
 * so a bad return value costs one request, not the partition.
 */
function encodeBody(body: unknown, partition: number, endpoint: string): Uint8Array {
  const refuse = (why: string): Uint8Array =>
    encodeReply({ ok: false, error: { code: 'SPS_ENCODE', message: `partition ${partition}, endpoint "${endpoint}": reply cannot be encoded: ${why}` } });
  // msgpack would silently send these as nil; the caller surely meant something else.
  if (typeof body === 'function' || typeof body === 'symbol') return refuse(`a ${typeof body} has no msgpack form`);
  try {
    return encodeReply({ ok: true, body });
  } catch (err) {
    return refuse(err instanceof Error ? err.message : String(err));
  }
}

/** Replies unless the connection is gone (a late async reply after close): then nobody is waiting. */
function respond(msg: Msg, data: Uint8Array): void {
  try {
    msg.respond(data);
  } catch {
    // The connection closed under a late handler; the requester has already timed out.
  }
}

/**
 * Answers requests to a partition's endpoints. The endpoint name is the subject's last token; a
 * request that does not decode gets an error reply (and is counted), an unknown endpoint gets the
 * list of known ones, a handler's throw becomes an error reply with the handler's code, and a
 * reply that cannot be encoded becomes an `SPS_ENCODE` error reply. Async handlers are counted in
 * `hooks.inFlight` until they settle.
 */
export function serveEndpoints(
  nc: NatsConnection,
  subject: string,
  handlers: Record<string, EndpointHandler>,
  ctx: PartitionContext,
  hooks: EndpointHooks,
): Subscription {
  const stats = hooks.stats;
  // One counter per endpoint, looked up by name: no key is built per request.
  const counters = stats && new Map(Object.keys(handlers).map((n) => [n, stats.counter(`nats ${n}`)]));
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      const name = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
      let payload: unknown;
      try {
        payload = decodeRequest(msg.subject, msg.data);
      } catch (e) {
        hooks.onMalformed();
        respond(msg, encodeReply({ ok: false, error: toWireError(e) }));
        return;
      }
      const handler = handlers[name];
      if (!handler) {
        const known = Object.keys(handlers).join(', ') || 'none';
        respond(
          msg,
          encodeReply({ ok: false, error: { code: 'SPS_UNKNOWN_ENDPOINT', message: `partition ${ctx.partition} has no endpoint "${name}" (has: ${known})` } }),
        );
        return;
      }
      const counter = counters?.get(name);
      const start = counter ? performance.now() : 0;
      const fail = (e: unknown): void => {
        respond(msg, encodeReply({ ok: false, error: toWireError(e) }));
        if (counter) stats!.record(counter, start, true);
      };
      const reply = (b: unknown): void => {
        respond(msg, encodeBody(b, ctx.partition, name));
        if (counter) stats!.record(counter, start, false);
      };
      let body: unknown;
      try {
        body = handler(payload, ctx);
      } catch (e) {
        fail(e);
        return;
      }
      // Synchronous handlers reply at once; only real promises cost a hop (and are counted).
      if (body instanceof Promise) void hooks.inFlight.track(`endpoint "${name}"`, body.then(reply, fail));
      else reply(body);
    },
  });
}
