import type { Subscription } from '@nats-io/nats-core';
import { toWireError } from '../protocol/types.js';
import type { EndpointHandler, PartitionContext } from '../api/context.js';
import type { NatsConnection } from '../transport/bus.js';
import { decodeRequest, encodeReply } from '../protocol/messages.js';

/**
 * Answers requests to a partition's endpoints. The endpoint name is the subject's last token; a
 * request that does not decode gets an error reply (and is counted), an unknown endpoint gets the
 * list of known ones, and a handler's throw becomes an error reply with the handler's code.
 */
export function serveEndpoints(
  nc: NatsConnection,
  subject: string,
  handlers: Record<string, EndpointHandler>,
  ctx: PartitionContext,
  onMalformed: () => void,
): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      const name = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
      let payload: unknown;
      try {
        payload = decodeRequest(msg.subject, msg.data);
      } catch (e) {
        onMalformed();
        msg.respond(encodeReply({ ok: false, error: toWireError(e) }));
        return;
      }
      const handler = handlers[name];
      if (!handler) {
        const known = Object.keys(handlers).join(', ') || 'none';
        msg.respond(encodeReply({ ok: false, error: { code: 'SPS_UNKNOWN_ENDPOINT', message: `partition ${ctx.partition} has no endpoint "${name}" (has: ${known})` } }));
        return;
      }
      const fail = (e: unknown): void => void msg.respond(encodeReply({ ok: false, error: toWireError(e) }));
      let body: unknown;
      try {
        body = handler(payload, ctx);
      } catch (e) {
        fail(e);
        return;
      }
      // Synchronous handlers reply at once; only real promises cost a hop.
      if (body instanceof Promise) body.then((b) => msg.respond(encodeReply({ ok: true, body: b })), fail);
      else msg.respond(encodeReply({ ok: true, body }));
    },
  });
}
