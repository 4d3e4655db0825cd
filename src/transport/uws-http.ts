import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { STATUS_CODES } from 'node:http';
import { SparkPartitionServerError } from '../errors.js';
import { InFlight } from './in-flight.js';
import {
  httpResponse,
  toHttpResponse,
  type HttpHandler,
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  type HttpResult,
  type HttpServer,
  type WsConnection,
  type WsHandler,
} from './http.js';

const require = createRequire(import.meta.url);

/** Largest request body accepted, in bytes; larger ones get 413. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

// `any`: the native module ships no usable types.
type Uws = any;

interface LoadedUws {
  uws: Uws;
  implementation: string;
}

let loaded: LoadedUws | undefined;

/**
 * Loads a native uWebSockets.js build. The official package is preferred when installed; otherwise
 * the npm fork's binary for this platform and Node ABI is loaded directly, because the fork's own
 * entry point silently falls back to a slow JavaScript shim when the binary does not load.
 */
export function loadUws(): LoadedUws {
  if (loaded) return loaded;
  try {
    loaded = { uws: require('uWebSockets.js'), implementation: 'uWebSockets.js (native, official)' };
    return loaded;
  } catch {
    // Not installed: use the fork below.
  }
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  let dir: string;
  try {
    dir = dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  } catch (err) {
    throw new SparkPartitionServerError('SPS_UWS_LOAD', `uWebSockets.js is not installed: run "npm install". (${(err as Error).message})`);
  }
  try {
    loaded = { uws: require(join(dir, 'binaries', binary)), implementation: 'uWebSockets.js (native, @trufflesuite/uws-js-unofficial)' };
    return loaded;
  } catch (err) {
    throw new SparkPartitionServerError(
      'SPS_UWS_LOAD',
      `The native uWebSockets.js binary ${binary} does not load on this platform (Node ${process.version}, ABI ${process.versions.modules}): ${(err as Error).message}. Install a uWebSockets.js build for this Node version, or pass an httpServer factory of your own.`,
    );
  }
}

function collectHeaders(req: Uws): Record<string, string> {
  const headers: Record<string, string> = {};
  req.forEach((k: string, v: string) => {
    headers[k] = v;
  });
  return headers;
}

const EMPTY_BODY = Buffer.alloc(0);

/** A request copied out of uWS (whose own request object dies when its callback returns). */
class UwsRequest implements HttpRequest {
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

const statusLines = new Map<number, string>();

/** Writes a response; inside a uWS callback, or within `cork` when answering later. */
function write(res: Uws, r: HttpResponse): void {
  if (r.status !== 200) {
    let line = statusLines.get(r.status);
    if (!line) statusLines.set(r.status, (line = `${r.status} ${STATUS_CODES[r.status] ?? ''}`));
    res.writeStatus(line);
  }
  for (const k in r.headers) res.writeHeader(k, r.headers[k]);
  res.end(r.body ?? '');
}

/**
 * Writes a response, or, when uWS refuses it (the client went away, a header value that is not a
 * string), closes the connection: a throw here would escape a uWS callback and end the process.
 */
function writeSafely(res: Uws, r: HttpResponse): void {
  try {
    write(res, r);
  } catch {
    try {
      res.close();
    } catch {
      // Already gone.
    }
  }
}

/** Any thrown value as text, even one whose own conversion throws. */
function describe(err: unknown): string {
  try {
    return String(err);
  } catch {
    return 'a value that cannot be printed';
  }
}

/** The 500 answer to a handler's throw; only a string code and message are sent, so it always encodes. */
function failure(err: unknown): HttpResponse {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  const code = typeof e?.code === 'string' ? e.code : 'SPS_HANDLER_ERROR';
  const message = typeof e?.message === 'string' ? e.message : describe(err);
  return httpResponse(500, { error: { code, message } });
}

/** How a request is named in errors and in {@link HttpServer.inFlight}. */
function labelOf(req: HttpRequest): string {
  return `${req.method} ${req.path}`;
}

/**
 * The response for a handler's value; a value with no JSON form (a BigInt, a circular object)
 * answers 500 `SPS_ENCODE` naming the route, instead of throwing inside a uWS callback.
 */
function respondWith(req: HttpRequest, result: HttpResult): HttpResponse {
  try {
    return toHttpResponse(result);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    const why = typeof e?.message === 'string' ? e.message : describe(err);
    return httpResponse(500, { error: { code: 'SPS_ENCODE', message: `${labelOf(req)}: ${why}` } });
  }
}

/** An {@link HttpServer} on native uWebSockets.js. */
export function createUwsServer(): HttpServer {
  const { uws, implementation } = loadUws();
  const app = uws.App();
  let listenSocket: unknown;
  // Requests still being answered (bodies being received, async handlers running), by route.
  const inFlight = new InFlight();

  /**
   * Answers a handler's promise when it settles, unless the client went away meanwhile. The
   * request counts as in flight until its answer is written, so close() waits for it.
   */
  const answerLater = (res: Uws, label: string, pending: Promise<HttpResponse>): void => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const end = inFlight.begin(label);
    // `pending` never rejects: failures became responses.
    void pending.then((r) => {
      try {
        if (!aborted) res.cork(() => writeSafely(res, r));
      } catch {
        // uWS discarded the response (its connection was closed by close()): nobody to answer.
      } finally {
        end();
      }
    });
  };

  /**
   * Runs a handler from within a uWS callback: a synchronous answer is written right away (no
   * promise hop on the hot path); a promise is answered when it settles.
   */
  const run = (res: Uws, handler: HttpHandler, request: UwsRequest): void => {
    let result: HttpResult | Promise<HttpResult>;
    try {
      result = handler(request);
    } catch (err) {
      result = failure(err);
    }
    if (result instanceof Promise)
      answerLater(
        res,
        labelOf(request),
        result.then((r) => respondWith(request, r), failure),
      );
    else writeSafely(res, respondWith(request, result));
  };

  const serve = (handler: HttpHandler) => (res: Uws, req: Uws) => {
    const method = req.getCaseSensitiveMethod ? req.getCaseSensitiveMethod() : req.getMethod().toUpperCase();
    // uWS's request object dies when this callback returns: copy what handlers may read.
    const path = req.getUrl() as string;
    const query = (req.getQuery() as string | undefined) ?? '';
    const headers = collectHeaders(req);
    if (method === 'GET' || method === 'HEAD') {
      run(res, handler, new UwsRequest(method, path, query, headers, EMPTY_BODY));
      return;
    }
    // The body arrives in later callbacks; until then the request counts as in flight.
    let receiving = true;
    const endReceiving = inFlight.begin(`${method} ${path}`); // as labelOf() names it
    const received = (): void => {
      receiving = false;
      endReceiving();
    };
    res.onAborted(() => receiving && received());
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((ab: ArrayBuffer, isLast: boolean) => {
      if (!receiving) return;
      size += ab.byteLength;
      if (size > MAX_BODY_BYTES) {
        received();
        writeSafely(res, httpResponse(413, { error: { code: 'SPS_BODY_TOO_LARGE', message: `body exceeds ${MAX_BODY_BYTES} bytes` } }));
        return;
      }
      // uWS reuses the ArrayBuffer after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(ab)));
      if (!isLast) return;
      // Run first: an async handler is counted before the body stops counting, so close() never
      // sees a moment with nothing in flight in between.
      run(res, handler, new UwsRequest(method, path, query, headers, Buffer.concat(chunks)));
      received();
    });
  };

  // uWS prefers static and parameter routes over this wildcard, so it only catches unknown paths.
  app.any(
    '/*',
    serve((req) => httpResponse(404, { error: { code: 'SPS_NO_ROUTE', message: `no route for ${req.method} ${req.path}` } })),
  );

  const sockets = new Map<Uws, WsConnection & { closed: boolean }>();

  const websocket = (path: string, handler: WsHandler): void => {
    app.ws(path, {
      maxPayloadLength: handler.maxPayloadLength ?? MAX_BODY_BYTES,
      idleTimeout: handler.idleTimeoutSeconds ?? 120,
      upgrade: (res: Uws, req: Uws, context: unknown) => {
        const key = req.getHeader('sec-websocket-key') as string;
        const protocol = req.getHeader('sec-websocket-protocol') as string;
        const extensions = req.getHeader('sec-websocket-extensions') as string;
        if (handler.authorize) {
          const request = new UwsRequest('GET', req.getUrl() as string, (req.getQuery() as string | undefined) ?? '', collectHeaders(req), EMPTY_BODY);
          let accepted = false;
          try {
            accepted = handler.authorize(request);
          } catch {
            // A throwing check refuses, as a false one does.
          }
          if (!accepted) {
            writeSafely(res, httpResponse(401, { error: { code: 'SPS_UNAUTHORIZED', message: 'WebSocket refused: missing or wrong token' } }));
            return;
          }
        }
        res.upgrade({}, key, protocol, extensions, context);
      },
      open: (ws: Uws) => {
        const conn = {
          closed: false,
          send: (message: string | Uint8Array) => !conn.closed && ws.send(message, typeof message !== 'string') === 1,
          close: (code = 1000, reason?: string) => {
            if (!conn.closed) ws.end(code, reason);
          },
          get bufferedAmount() {
            return conn.closed ? 0 : (ws.getBufferedAmount() as number);
          },
        };
        sockets.set(ws, conn);
        handler.open?.(conn);
      },
      message: (ws: Uws, ab: ArrayBuffer, isBinary: boolean) => {
        const conn = sockets.get(ws)!;
        // uWS neuters the ArrayBuffer when this callback returns: decode or copy it now.
        const data = isBinary ? Buffer.from(new Uint8Array(ab)) : Buffer.from(ab).toString('utf8');
        const fail = (err: unknown): void => conn.close(1011, String((err as Error)?.message ?? err).slice(0, 120));
        try {
          const done = handler.message?.(conn, data);
          if (done instanceof Promise) done.catch(fail);
        } catch (err) {
          fail(err);
        }
      },
      close: (ws: Uws, code: number) => {
        const conn = sockets.get(ws)!;
        conn.closed = true;
        sockets.delete(ws);
        handler.close?.(conn, code);
      },
    });
  };

  return {
    implementation,
    native: true,
    websocket,
    route(method: HttpMethod, path: string, handler: HttpHandler) {
      app[method === 'delete' ? 'del' : method](path, serve(handler));
    },
    listen(host: string, port: number) {
      return new Promise((resolve, reject) => {
        app.listen(host, port, (socket: unknown) => {
          if (!socket) {
            reject(new SparkPartitionServerError('SPS_HTTP_LISTEN', `could not listen on ${host}:${port}`));
            return;
          }
          listenSocket = socket;
          resolve({ host, port: uws.us_socket_local_port(socket) as number });
        });
      });
    },
    async close(graceMs = 5000) {
      if (listenSocket) {
        uws.us_listen_socket_close(listenSocket);
        listenSocket = undefined;
      }
      // What is still running after the grace period stays listed in inFlight() for the caller.
      await inFlight.settled(graceMs);
      for (const conn of sockets.values()) conn.close(1001, 'server shutting down');
      // Closes kept-alive connections too, so the process can exit.
      if (typeof app.close === 'function') app.close();
    },
    inFlight: () => inFlight.names(),
  };
}
