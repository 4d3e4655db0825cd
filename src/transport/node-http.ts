/**
 * The {@link HttpServer} on `node:http`, with WebSockets through `ws`: what serves where no
 * uWebSockets.js binary loads (a Node ABI or glibc no npm build has). Same routes, request object,
 * WebSocket handlers, limits and close semantics as the native server, in plain JavaScript.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { SparkPartitionServerError } from '../errors.js';
import { InFlight } from './in-flight.js';
import type { HttpHandler, HttpMethod, HttpResponse, HttpResult, HttpServer, WsConnection, WsHandler } from './http.js';
import {
  closeReason,
  EMPTY_BODY,
  failure,
  MAX_BODY_BYTES,
  noRoute,
  ReadRequest,
  refusedUpgrade,
  respondWith,
  tooLarge,
  upgradeAllowed,
  WS_IDLE_TIMEOUT_S,
  WS_MAX_PAYLOAD,
} from './http-common.js';

/** As uWebSockets.js: a connection silent this long while a request's headers arrive, or kept alive unused, is closed. */
const HTTP_IDLE_TIMEOUT_MS = 10_000;
/** A whole request (headers and body) must arrive within this long. */
const REQUEST_TIMEOUT_MS = 120_000;
/** As uWebSockets.js' default `maxBackpressure`: a message is dropped while more than this waits to be sent. */
const WS_MAX_BACKPRESSURE = 64 * 1024;
/** `send` reports backpressure once more than this waits (a socket's default high-water mark). */
const WS_BUFFERED_OK = 16 * 1024;
/** How long close() waits for WebSockets to finish their closing handshake before cutting them. */
const WS_CLOSE_WAIT_MS = 1000;

/** The request's headers, lower-cased; of a repeated header the last one, as uWebSockets.js gives it. */
function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
  return headers;
}

/** The path and the query string of a request target. */
function splitUrl(url: string | undefined): { path: string; query: string } {
  const target = url ?? '/';
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/** Writes a response, or closes the connection when Node refuses it (a header value it cannot send). */
function write(res: ServerResponse, r: HttpResponse): void {
  if (res.destroyed || res.writableEnded) return;
  try {
    res.statusCode = r.status;
    for (const k in r.headers) res.setHeader(k, r.headers[k]!);
    // Headers not yet sent: end() adds the Content-Length.
    res.end(r.body ?? '');
  } catch {
    res.destroy();
  }
}

/** Answers a refused upgrade on the raw socket (no HTTP response object exists for it) and closes it. */
function refuseUpgrade(socket: Duplex, r: HttpResponse): void {
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.from(r.body ?? EMPTY_BODY);
  const head = [`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)];
  head.push(`content-length: ${body.length}`, 'connection: close', '', '');
  socket.end(Buffer.concat([Buffer.from(head.join('\r\n')), body]));
}

interface Routes {
  /** Exact paths → method (upper case, or `ANY`) → handler. */
  exact: Map<string, Map<string, HttpHandler>>;
  /** Prefix routes (`/x/*` as `/x/`), longest first. */
  prefixes: { prefix: string; method: string; handler: HttpHandler }[];
}

/** The handler for a request: exact paths before prefixes, a method's own route before `any`. */
function find(routes: Routes, method: string, path: string): HttpHandler | undefined {
  const byMethod = routes.exact.get(path);
  const exact = byMethod?.get(method) ?? byMethod?.get('ANY');
  if (exact) return exact;
  let any: HttpHandler | undefined;
  for (const r of routes.prefixes) {
    if (!path.startsWith(r.prefix)) continue;
    if (r.method === method) return r.handler;
    any ??= r.handler;
  }
  return any;
}

/** An {@link HttpServer} on `node:http`, with WebSockets through `ws`. */
export function createNodeHttpServer(): HttpServer {
  const routes: Routes = { exact: new Map(), prefixes: [] };
  const wsRoutes = new Map<string, { handler: WsHandler; server?: WebSocketServer }>();
  // `ws`, loaded by `listen` only when there are WebSocket routes: most servers never need it.
  let Wss: typeof WebSocketServer | undefined;
  const wssFor = (handler: WsHandler) => new Wss!({ noServer: true, maxPayload: handler.maxPayloadLength ?? WS_MAX_PAYLOAD, perMessageDeflate: false });
  // Requests still being answered (bodies being received, handlers running), by route.
  const inFlight = new InFlight();
  const sockets = new Map<WebSocket, WsConnection & { closed: boolean }>();

  /** Runs a handler and writes its answer; the request stops counting once it is written. */
  const run = (res: ServerResponse, handler: HttpHandler, request: ReadRequest, end: () => void): void => {
    let result: HttpResult | Promise<HttpResult>;
    try {
      result = handler(request);
    } catch (err) {
      result = failure(err);
    }
    if (result instanceof Promise) {
      // Never rejects: failures became responses.
      void result
        .then((r) => respondWith(request, r), failure)
        .then((r) => {
          write(res, r);
          end();
        });
    } else {
      write(res, respondWith(request, result));
      end();
    }
  };

  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    const { path, query } = splitUrl(req.url);
    const handler = find(routes, method, path) ?? noRoute;
    const headers = headersOf(req);
    const end = inFlight.begin(`${method} ${path}`); // as labelOf() names it
    if (method === 'GET' || method === 'HEAD') {
      // A body on these is not read (as uWebSockets.js): let it flow away.
      req.resume();
      run(res, handler, new ReadRequest(method, path, query, headers, EMPTY_BODY), end);
      return;
    }
    const refuse = (): void => {
      // The rest of the body is not read: the connection closes once the answer is out.
      res.setHeader('connection', 'close');
      res.once('finish', () => req.destroy());
      write(res, tooLarge());
      end();
    };
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) {
      refuse();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let receiving = true;
    req.on('data', (chunk: Buffer) => {
      if (!receiving) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        receiving = false;
        chunks.length = 0;
        refuse();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!receiving) return;
      receiving = false;
      run(res, handler, new ReadRequest(method, path, query, headers, Buffer.concat(chunks, size)), end);
    });
    // The client went away before the body was in: no handler runs.
    req.once('close', () => receiving && end());
  };

  const server = createServer(
    { headersTimeout: HTTP_IDLE_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: HTTP_IDLE_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    serve,
  );

  const open = (ws: WebSocket, handler: WsHandler): void => {
    const conn = {
      closed: false,
      send: (message: string | Uint8Array): boolean => {
        if (conn.closed || ws.readyState !== ws.OPEN || ws.bufferedAmount > WS_MAX_BACKPRESSURE) return false;
        ws.send(message, { binary: typeof message !== 'string' });
        return ws.bufferedAmount <= WS_BUFFERED_OK;
      },
      close: (code = 1000, reason?: string): void => {
        if (conn.closed) return;
        try {
          ws.close(code, reason);
        } catch {
          // A code a close frame may not carry (e.g. 1006): cut the connection instead.
          ws.terminate();
        }
      },
      get bufferedAmount() {
        return conn.closed ? 0 : ws.bufferedAmount;
      },
    };
    sockets.set(ws, conn);
    const fail = (err: unknown): void => conn.close(1011, closeReason(err));
    // Idle: a ping after half the timeout without traffic; the connection is cut after the whole.
    const idleMs = (handler.idleTimeoutSeconds ?? WS_IDLE_TIMEOUT_S) * 1000;
    let heard = true;
    let pinged = false;
    const idle =
      idleMs > 0
        ? setInterval(() => {
            if (heard) {
              heard = false;
              pinged = false;
            } else if (!pinged) {
              pinged = true;
              ws.ping();
            } else ws.terminate();
          }, idleMs / 2).unref()
        : undefined;
    const hear = (): void => {
      heard = true;
    };
    ws.on('ping', hear);
    ws.on('pong', hear);
    // A protocol error (e.g. a message over maxPayloadLength) closes the connection; nothing to add.
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      hear();
      // ws hands each message its own buffer: safe to keep, no copy needed.
      const payload = isBinary ? data : data.toString('utf8');
      try {
        const done = handler.message?.(conn, payload);
        if (done instanceof Promise) done.catch(fail);
      } catch (err) {
        fail(err);
      }
    });
    ws.once('close', (code: number) => {
      conn.closed = true;
      sockets.delete(ws);
      if (idle) clearInterval(idle);
      handler.close?.(conn, code);
    });
    try {
      handler.open?.(conn);
    } catch (err) {
      fail(err);
    }
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const { path, query } = splitUrl(req.url);
    const request = new ReadRequest(req.method ?? 'GET', path, query, headersOf(req), EMPTY_BODY);
    const route = wsRoutes.get(path);
    if (!route?.server) return refuseUpgrade(socket, noRoute(request));
    if (!upgradeAllowed(route.handler.authorize, request)) return refuseUpgrade(socket, refusedUpgrade());
    route.server.handleUpgrade(req, socket, head, (ws) => open(ws, route.handler));
  });

  /** Resolves once every WebSocket closed, or after {@link WS_CLOSE_WAIT_MS}; the rest are cut. */
  const closeSockets = async (): Promise<void> => {
    const closed = [...sockets.keys()].map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
    for (const conn of sockets.values()) conn.close(1001, 'server shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((resolve) => (timer = setTimeout(resolve, WS_CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    for (const ws of sockets.keys()) ws.terminate();
  };

  return {
    implementation: `node:http + ws (JavaScript, Node ${process.version})`,
    native: false,
    route(method: HttpMethod, path: string, handler: HttpHandler) {
      const m = method.toUpperCase();
      if (path.endsWith('/*')) {
        routes.prefixes.push({ prefix: path.slice(0, -1), method: m, handler });
        routes.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
        return;
      }
      let byMethod = routes.exact.get(path);
      if (!byMethod) routes.exact.set(path, (byMethod = new Map()));
      byMethod.set(m, handler);
    },
    websocket(path: string, handler: WsHandler) {
      wsRoutes.set(path, { handler, server: Wss ? wssFor(handler) : undefined });
    },
    async listen(host: string, port: number) {
      if (wsRoutes.size > 0) {
        Wss ??= (await import('ws')).WebSocketServer;
        for (const r of wsRoutes.values()) r.server ??= wssFor(r.handler);
      }
      return new Promise((resolve, reject) => {
        const failed = (err: Error): void =>
          reject(new SparkPartitionServerError('SPS_HTTP_LISTEN', `could not listen on ${host}:${port}: ${err.message}`, { cause: err }));
        server.once('error', failed);
        server.listen(port, host, () => {
          server.off('error', failed);
          resolve({ host, port: (server.address() as AddressInfo).port });
        });
      });
    },
    async close(graceMs = 5000) {
      // Stops accepting; connections kept alive without a request close now.
      server.close(() => {});
      server.closeIdleConnections();
      // What is still running after the grace period stays listed in inFlight() for the caller.
      await inFlight.settled(graceMs);
      await closeSockets();
      for (const { server: wss } of wsRoutes.values()) wss?.close();
      server.closeAllConnections();
    },
    inFlight: () => inFlight.names(),
  };
}
