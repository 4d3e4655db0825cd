import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { MalformedMessageError } from '../errors.js';
import { MAX_MESSAGE_BYTES } from './codec.js';
import type { WireError } from './types.js';

/**
 * The JSON content mode of endpoint requests, for clients without msgpack (`nats req`, curl-like
 * tools, any language's NATS client). A request with the header `Content-Type: application/json`
 * carries the handler's payload as plain JSON (an empty body is `null`), and its reply is JSON too:
 * `{"ok":true,"body":…}` or `{"ok":false,"error":{"code":…,"message":…}}`, the same fields as the
 * msgpack `res` envelope without `v` and `t`. Without the header the msgpack envelope is used.
 */
export const CONTENT_TYPE = 'Content-Type';
/** The media type that selects the JSON mode. */
export const JSON_MEDIA_TYPE = 'application/json';

/** True when a request asks for the JSON mode (parameters such as `; charset=utf-8` are allowed). */
export function wantsJson(h: MsgHdrs | undefined): boolean {
  const value = h?.get(CONTENT_TYPE);
  return !!value && value.split(';')[0]!.trim().toLowerCase() === JSON_MEDIA_TYPE;
}

/** The payload of a JSON-mode request; a body that is not JSON is refused, naming the subject. */
export function decodeJsonRequest(subject: string, data: Uint8Array): unknown {
  if (data.length > MAX_MESSAGE_BYTES) throw new MalformedMessageError(subject, `${data.length} bytes, more than the ${MAX_MESSAGE_BYTES} a message may have`);
  if (data.length === 0) return null;
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return JSON.parse(text.decode(data)) as unknown;
  } catch (err) {
    throw new MalformedMessageError(subject, `the body of a ${JSON_MEDIA_TYPE} request is not JSON: ${(err as Error).message}`);
  }
}

/** The headers of a JSON-mode reply. */
export function jsonReplyHeaders(): MsgHdrs {
  const h = natsHeaders();
  h.set(CONTENT_TYPE, JSON_MEDIA_TYPE);
  return h;
}

/** A JSON-mode reply; its body mapped by `toWireValue` first (wire-values.ts), so it has a JSON form. */
export function encodeJsonReply(reply: { ok: true; body: unknown } | { ok: false; error: WireError }): string {
  return JSON.stringify(reply);
}
