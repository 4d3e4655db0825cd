/**
 * What every `HttpServer` of this package answers by itself (errors, refusals, limits), so
 * the uWebSockets.js server and the `node:http` fallback answer alike.
 */
import { httpResponse, toHttpResponse, type HttpRequest, type HttpResponse, type HttpResult } from './http.js';

/** Largest request body accepted, in bytes; larger ones get 413. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Default largest WebSocket message, in bytes. */
export const WS_MAX_PAYLOAD = MAX_BODY_BYTES;

/** Default seconds without WebSocket traffic before the connection is closed. */
export const WS_IDLE_TIMEOUT_S = 120;

export const EMPTY_BODY = Buffer.alloc(0);

/**
 * A request whose body was read in full, its fields copied out of the server's own request object
 * (uWS's dies when its callback returns).
 */
export class ReadRequest implements HttpRequest {
  private parsedQuery?: URLSearchParams;
  constructor(
    readonly method: string,
    readonly path: string,
    private readonly rawQuery: string,
    readonly headers: Readonly<Record<string, string>>,
    readonly body: Buffer,
  ) {}

  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.rawQuery));
  }

  json(): unknown {
    return JSON.parse(this.body.toString('utf8'));
  }
}

/** Any thrown value as text, even one whose own conversion throws. */
export function describe(err: unknown): string {
  try {
    return String(err);
  } catch {
    return 'a value that cannot be printed';
  }
}

/** The 500 answer to a handler's throw; only a string code and message are sent, so it always encodes. */
export function failure(err: unknown): HttpResponse {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  const code = typeof e?.code === 'string' ? e.code : 'SPS_HANDLER_ERROR';
  const message = typeof e?.message === 'string' ? e.message : describe(err);
  return httpResponse(500, { error: { code, message } });
}

/** How a request is named in errors and in `HttpServer.inFlight`. */
export function labelOf(req: HttpRequest): string {
  return `${req.method} ${req.path}`;
}

/**
 * The response for a handler's value; a value with no JSON form (a BigInt, a circular object)
 * answers 500 `SPS_ENCODE` naming the route, instead of throwing inside the server's callback.
 */
export function respondWith(req: HttpRequest, result: HttpResult): HttpResponse {
  try {
    return toHttpResponse(result);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    const why = typeof e?.message === 'string' ? e.message : describe(err);
    return httpResponse(500, { error: { code: 'SPS_ENCODE', message: `${labelOf(req)}: ${why}` } });
  }
}

/** The 413 answer to a body over {@link MAX_BODY_BYTES}. */
export function tooLarge(): HttpResponse {
  return httpResponse(413, { error: { code: 'SPS_BODY_TOO_LARGE', message: `body exceeds ${MAX_BODY_BYTES} bytes` } });
}

/** The 404 answer to a path no route serves. */
export function noRoute(req: HttpRequest): HttpResponse {
  return httpResponse(404, { error: { code: 'SPS_NO_ROUTE', message: `no route for ${req.method} ${req.path}` } });
}

/** The 401 answer to a WebSocket upgrade its route's `authorize` refused. */
export function refusedUpgrade(): HttpResponse {
  return httpResponse(401, { error: { code: 'SPS_UNAUTHORIZED', message: 'WebSocket refused: missing or wrong token' } });
}

/** Asks a route's `authorize` about an upgrade; a throwing check refuses, as a false one does. */
export function upgradeAllowed(authorize: ((req: HttpRequest) => boolean) | undefined, req: HttpRequest): boolean {
  if (!authorize) return true;
  try {
    return authorize(req) === true;
  } catch {
    return false;
  }
}

/** The close reason for a message handler's throw: its message, cut to fit a close frame (123 bytes). */
export function closeReason(err: unknown): string {
  let reason = String((err as Error)?.message ?? describe(err)).slice(0, 120);
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}
