/**
 * The HTTP edge of a partition server, kept behind this interface so the server in use (a native
 * uWebSockets.js build, or `node:http` where none loads) can be swapped without touching servers.
 */
import { SparkPartitionServerError } from '../errors.js';

/** HTTP methods a route can be bound to; `any` matches every method. */
export type HttpMethod = 'get' | 'post' | 'put' | 'delete' | 'any';

/** A request as seen by a route handler. Headers are lower-cased; the body is fully read. */
export interface HttpRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/app/get_list`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** The body parsed as JSON. @throws SyntaxError when it is not JSON. */
  json(): unknown;
}

const RESPONSE = Symbol.for('spark-partition-server.HttpResponse');

/** A response with an explicit status or headers; build it with {@link httpResponse}. */
export interface HttpResponse {
  readonly [RESPONSE]: true;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array | undefined;
}

/**
 * What a handler returns: a string (sent as `text/plain`), bytes (`application/octet-stream`),
 * `undefined` (204), an {@link HttpResponse}, or any other value (sent as JSON).
 */
export type HttpResult = HttpResponse | string | Uint8Array | undefined | null | number | boolean | object;

/**
 * A route handler. Throwing answers 500 with the error's code and message; a value that cannot be
 * encoded as JSON (a BigInt, a circular object) answers 500 with code `SPS_ENCODE`.
 */
export type HttpHandler = (req: HttpRequest) => HttpResult | Promise<HttpResult>;

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json' });
const TEXT_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'text/plain; charset=utf-8' });
const BYTES_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/octet-stream' });

/**
 * `body` as JSON text.
 * @throws SparkPartitionServerError `SPS_ENCODE` when it has no JSON form: a BigInt or a circular
 *   object (JSON.stringify throws), a function or a symbol (JSON.stringify would give nothing).
 */
function jsonText(body: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch (err) {
    throw new SparkPartitionServerError('SPS_ENCODE', `reply cannot be encoded as JSON: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new SparkPartitionServerError('SPS_ENCODE', `reply cannot be encoded as JSON: a ${typeof body} has no JSON form`);
  return text;
}

/**
 * Builds a response with a status and headers. Objects are sent as JSON.
 * @throws SparkPartitionServerError `SPS_ENCODE` when `body` cannot be encoded as JSON.
 */
export function httpResponse(status: number, body?: unknown, headers?: Record<string, string>): HttpResponse {
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    return { [RESPONSE]: true, status, headers: headers ?? NO_HEADERS, body };
  }
  // Shared header objects keep the common answers free of per-request allocations.
  return { [RESPONSE]: true, status, headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS, body: jsonText(body) };
}

/**
 * Turns whatever a handler returned into a response.
 * @throws SparkPartitionServerError `SPS_ENCODE` when the value cannot be encoded as JSON.
 */
export function toHttpResponse(result: HttpResult): HttpResponse {
  if (result !== null && typeof result === 'object' && RESPONSE in result) return result as HttpResponse;
  if (result === undefined || result === null) return httpResponse(204);
  if (typeof result === 'string') return httpResponse(200, result, TEXT_HEADERS);
  if (result instanceof Uint8Array) return httpResponse(200, result, BYTES_HEADERS);
  return httpResponse(200, result as object);
}

/** One WebSocket connection, usable from `open` until `close`. */
export interface WsConnection {
  /** Sends a text (string) or binary (bytes) message; false when it had to be buffered or was dropped. */
  send(message: string | Uint8Array): boolean;
  /** Closes the connection with a close code (default 1000). */
  close(code?: number, reason?: string): void;
  /** Bytes waiting to be sent (backpressure). */
  readonly bufferedAmount: number;
}

/** Handles the WebSocket connections of one route. */
export interface WsHandler {
  open?(ws: WsConnection): void;
  /** A message: text as a string, binary as bytes (a copy, safe to keep). A throw closes with 1011. */
  message?(ws: WsConnection, data: string | Uint8Array): void | Promise<void>;
  close?(ws: WsConnection, code: number): void;
  /** Largest message accepted; a bigger one closes the connection. Default: 16 MiB. */
  maxPayloadLength?: number;
  /** Seconds without traffic before the connection is closed; 0 disables. Default: 120. */
  idleTimeoutSeconds?: number;
  /**
   * Decides from the upgrade request (its headers and query; no body) whether the connection is
   * accepted; a refused upgrade is answered 401. Default: every upgrade is accepted.
   */
  authorize?(req: HttpRequest): boolean;
}

/** A bound HTTP server. */
export interface HttpServer {
  /** Which implementation serves, e.g. `uWebSockets.js (native, @trufflesuite/uws-js-unofficial)`. */
  readonly implementation: string;
  /** True when a native uWebSockets.js build serves (not a JavaScript fallback). */
  readonly native: boolean;
  /** Adds a route. Paths are exact, or end in `/*` to match a prefix. */
  route(method: HttpMethod, path: string, handler: HttpHandler): void;
  /** Adds a WebSocket route (exact path). */
  websocket(path: string, handler: WsHandler): void;
  /** Starts listening; port 0 picks a free port. Resolves with what was bound. */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops accepting connections, waits (up to `graceMs`) for in-flight requests, and closes WebSockets with 1001. */
  close(graceMs?: number): Promise<void>;
  /**
   * The requests still being answered, e.g. `GET /app/slow` (`×n` when several), so a drain that
   * gave up waiting can say which. Optional: servers of your own may leave it out.
   */
  inFlight?(): string[];
}

/** Creates an {@link HttpServer}: {@link createUwsServer}, {@link createNodeHttpServer}, or one of your own. */
export type HttpServerFactory = () => HttpServer;
