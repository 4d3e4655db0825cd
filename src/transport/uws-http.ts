import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { STATUS_CODES } from 'node:http';
import { SparkPartitionServerError } from '../errors.js';
import { httpResponse, toHttpResponse, type HttpHandler, type HttpMethod, type HttpRequest, type HttpResponse, type HttpResult, type HttpServer } from './http.js';

const require = createRequire(import.meta.url);

/** Largest request body accepted, in bytes; larger ones get 413. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/* eslint-disable @typescript-eslint/no-explicit-any -- the native module ships no usable types */
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

/** An {@link HttpServer} on native uWebSockets.js. */
export function createUwsServer(): HttpServer {
  const { uws, implementation } = loadUws();
  const app = uws.App();
  let listenSocket: unknown;
  let inflight = 0;
  let idle: (() => void) | undefined;

  const serve = (handler: HttpHandler) => (res: Uws, req: Uws) => {
    // uWS invalidates `req` after this synchronous call: copy what handlers need first.
    const method = req.getCaseSensitiveMethod ? req.getCaseSensitiveMethod() : req.getMethod().toUpperCase();
    const path = req.getUrl() as string;
    const rawQuery = (req.getQuery() as string | undefined) ?? '';
    const headers = collectHeaders(req);
    let aborted = false;
    inflight++;
    // uWS needs onAborted before the callback returns whenever the answer comes later.
    const answerLater = (): void => {
      res.onAborted(() => {
        aborted = true;
      });
    };
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (status: number, hdrs: Record<string, string>, body: string | Uint8Array | undefined): void => {
      inflight--;
      if (inflight === 0 && idle) idle();
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`);
        for (const [k, v] of Object.entries(hdrs)) res.writeHeader(k, v);
        res.end(body ?? '');
      });
    };
    const fail = (err: Error & { code?: string }): HttpResponse =>
      httpResponse(500, { error: { code: err.code ?? 'SPS_HANDLER_ERROR', message: err.message } });
    const run = (body: Buffer): void => {
      let query: URLSearchParams | undefined;
      const request: HttpRequest = {
        method,
        path,
        get query() {
          return (query ??= new URLSearchParams(rawQuery));
        },
        headers,
        body,
        json: () => JSON.parse(body.toString('utf8')),
      };
      // Synchronous handlers answer within this uWS callback: no promise hop on the hot path.
      let result: HttpResult | Promise<HttpResult>;
      try {
        result = handler(request);
      } catch (err) {
        const r = fail(err as Error);
        finish(r.status, r.headers, r.body);
        return;
      }
      if (result instanceof Promise) {
        if (method === 'GET' || method === 'HEAD') answerLater();
        result.then(toHttpResponse, fail).then((r) => finish(r.status, r.headers, r.body));
        return;
      }
      const r = toHttpResponse(result);
      finish(r.status, r.headers, r.body);
    };
    if (method === 'GET' || method === 'HEAD') {
      run(Buffer.alloc(0));
      return;
    }
    answerLater();
    res.onData((ab: ArrayBuffer, isLast: boolean) => {
      if (size < 0) return;
      size += ab.byteLength;
      if (size > MAX_BODY_BYTES) {
        size = -1;
        const r = httpResponse(413, { error: { code: 'SPS_BODY_TOO_LARGE', message: `body exceeds ${MAX_BODY_BYTES} bytes` } });
        finish(r.status, r.headers, r.body);
        return;
      }
      // uWS reuses the ArrayBuffer after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(ab)));
      if (isLast) run(Buffer.concat(chunks));
    });
  };

  // uWS prefers static and parameter routes over this wildcard, so it only catches unknown paths.
  app.any('/*', serve((req) => httpResponse(404, { error: { code: 'SPS_NO_ROUTE', message: `no route for ${req.method} ${req.path}` } })));

  return {
    implementation,
    native: true,
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
      if (inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      // Closes kept-alive connections too, so the process can exit.
      if (typeof app.close === 'function') app.close();
    },
  };
}
