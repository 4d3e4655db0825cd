import { InvalidOptionError } from '../errors.js';
import type { HttpHandler, HttpServer, HttpServerFactory, WsHandler } from '../transport/http.js';
import { httpServerFactory, type HttpChoice } from '../transport/http-choice.js';
import { requestRecorderOf } from './request-recorder.js';
import type { PartitionContext } from './context.js';
import { PartitionServer, type PartitionServerOptions } from './partition-server.js';

/** Where routes are mounted: every user route is served under this prefix. */
export const APP_PREFIX = '/app';

/**
 * Where the worker puts the cluster's `http` option on a partition's context.
 * @internal
 */
export const HTTP_CHOICE = Symbol.for('spark-partition-server.httpChoice');

/** Adds routes below {@link APP_PREFIX}: `get('/get_list', h)` serves `GET /app/get_list`. */
export interface HttpRouter {
  get(path: string, handler: HttpHandler): void;
  post(path: string, handler: HttpHandler): void;
  put(path: string, handler: HttpHandler): void;
  delete(path: string, handler: HttpHandler): void;
  any(path: string, handler: HttpHandler): void;
  /** A WebSocket route: `ws('/stream', h)` accepts WebSockets on `/app/stream`. */
  ws(path: string, handler: WsHandler): void;
}

/** Options of an {@link HttpPartitionServer} used without subclassing. */
export interface HttpPartitionServerOptions<Row = unknown, Config = unknown, Result = unknown> extends PartitionServerOptions<Row, Config, Result> {
  /** Adds the application's routes. */
  routes?: (router: HttpRouter, ctx: PartitionContext<Config>, server: HttpPartitionServer<Row, Config, Result>) => void;
  /** Creates the HTTP server. Default: as the cluster's option `http` says (native uWebSockets.js where it loads). */
  httpServer?: HttpServerFactory;
}

/**
 * A partition server with an HTTP server (native uWebSockets.js, or `node:http` where no binary
 * loads: the cluster's option `http`) next to its NATS endpoints.
 * User routes live under `/app`; `/control/health` reports the partition's state and
 * `/control/shutdown` (POST, with the attempt's own control token) starts its shutdown. The host and port it
 * binds are what it registers with the supervisor.
 */
export class HttpPartitionServer<Row = unknown, Config = unknown, Result = unknown> extends PartitionServer<Row, Config, Result> {
  protected override readonly options: HttpPartitionServerOptions<Row, Config, Result>;

  constructor(options: HttpPartitionServerOptions<Row, Config, Result> = {}) {
    super(options);
    this.options = options;
  }

  /** Adds the application's routes; override it in a subclass, or pass `routes` as an option. */
  routes(router: HttpRouter, ctx: PartitionContext<Config>): void {
    this.options.routes?.(router, ctx, this);
  }

  override createHttpServer(ctx: PartitionContext<Config>): HttpServer {
    const choice = (ctx as { [HTTP_CHOICE]?: HttpChoice })[HTTP_CHOICE];
    const http = (this.options.httpServer ?? httpServerFactory(choice, (line) => ctx.logger.debug(line)))();
    // The worker counts every route's requests for the dashboard.
    const stats = requestRecorderOf(ctx);
    const mount = (method: 'get' | 'post' | 'put' | 'delete' | 'any') => (path: string, handler: HttpHandler) => {
      if (!path.startsWith('/')) throw new InvalidOptionError('route', `path "${path}" must start with "/"`);
      const route = APP_PREFIX + path;
      http.route(method, route, stats ? stats.timeHttp(`http ${method.toUpperCase()} ${route}`, handler) : handler);
    };
    const ws = (path: string, handler: WsHandler): void => {
      if (!path.startsWith('/')) throw new InvalidOptionError('router.ws', `path "${path}" must start with "/"`);
      http.websocket(APP_PREFIX + path, handler);
    };
    this.routes({ get: mount('get'), post: mount('post'), put: mount('put'), delete: mount('delete'), any: mount('any'), ws }, ctx);
    return http;
  }
}
