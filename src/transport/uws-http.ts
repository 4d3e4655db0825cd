import { STATUS_CODES } from 'node:http';
import { SparkPartitionServerError } from '../errors.js';
import { InFlight } from './in-flight.js';
import type { HttpHandler, HttpMethod, HttpResponse, HttpResult, HttpServer, WsConnection, WsHandler } from './http.js';
import {
  closeReason,
  failure,
  labelOf,
  MAX_BODY_BYTES,
  noRoute,
  ReadRequest,
  EMPTY_BODY,
  refusedUpgrade,
  respondWith,
  tooLarge,
  upgradeAllowed,
  WS_IDLE_TIMEOUT_S,
  WS_MAX_PAYLOAD,
} from './http-common.js';
import { loadUws } from './uws-load.js';

// `any`: the native module ships no usable types.
type Uws = any;

function collectHeaders(req: Uws): Record<string, string> {
  const headers: Record<string, string> = {};
  req.forEach((k: string, v: string) => {
    headers[k] = v;
  });
  return headers;
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
  const run = (res: Uws, handler: HttpHandler, request: ReadRequest): void => {
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
      run(res, handler, new ReadRequest(method, path, query, headers, EMPTY_BODY));
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
        writeSafely(res, tooLarge());
        return;
      }
      // uWS reuses the ArrayBuffer after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(ab)));
      if (!isLast) return;
      // Run first: an async handler is counted before the body stops counting, so close() never
      // sees a moment with nothing in flight in between.
      run(res, handler, new ReadRequest(method, path, query, headers, Buffer.concat(chunks)));
      received();
    });
  };

  // uWS prefers static and parameter routes over this wildcard, so it only catches unknown paths.
  app.any('/*', serve(noRoute));

  const sockets = new Map<Uws, WsConnection & { closed: boolean }>();

  const websocket = (path: string, handler: WsHandler): void => {
    app.ws(path, {
      maxPayloadLength: handler.maxPayloadLength ?? WS_MAX_PAYLOAD,
      idleTimeout: handler.idleTimeoutSeconds ?? WS_IDLE_TIMEOUT_S,
      upgrade: (res: Uws, req: Uws, context: unknown) => {
        const key = req.getHeader('sec-websocket-key') as string;
        const protocol = req.getHeader('sec-websocket-protocol') as string;
        const extensions = req.getHeader('sec-websocket-extensions') as string;
        if (handler.authorize) {
          const request = new ReadRequest('GET', req.getUrl() as string, (req.getQuery() as string | undefined) ?? '', collectHeaders(req), EMPTY_BODY);
          if (!upgradeAllowed(handler.authorize, request)) {
            writeSafely(res, refusedUpgrade());
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
        const fail = (err: unknown): void => conn.close(1011, closeReason(err));
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
      // uWS sends what was corked outside its callbacks on its next loop turn: let the answers
      // written during the grace period leave before every connection is cut.
      await new Promise((resolve) => setImmediate(resolve));
      for (const conn of sockets.values()) conn.close(1001, 'server shutting down');
      // Closes kept-alive connections too, so the process can exit.
      if (typeof app.close === 'function') app.close();
    },
    inFlight: () => inFlight.names(),
  };
}
