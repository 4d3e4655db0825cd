/**
 * The dashboard's HTTP side: one page (static HTML, JS and CSS shipped in this package) and a
 * WebSocket that pushes the run's {@link DashboardSnapshot} whenever it changes, at most every
 * {@link PUSH_MS}. Every route and the WebSocket require the dashboard's token (the driver's own; no
 * worker ever holds it): `?token=` once (the
 * page then sets an HttpOnly cookie and drops the token from the address bar), the cookie, or an
 * `Authorization: Bearer` / `x-sps-token` header. Without it: 401 and no data.
 */
import { readFileSync } from 'node:fs';
import { httpResponse, type HttpRequest, type HttpServer, type HttpServerFactory, type WsConnection } from '../../transport/http.js';
import { checkHttpChoice, httpServerFactory, type HttpChoice } from '../../transport/http-choice.js';
import { secretMatches } from '../../security/attempt-secrets.js';
import { InvalidOptionError } from '../../errors.js';
import type { RunMonitor } from './run-monitor.js';

/** Pushes are coalesced: at most one snapshot per this many ms. */
export const PUSH_MS = 250;
/** A client with more than this many bytes still unsent skips pushes until it catches up. */
const MAX_BUFFERED = 1 << 20;

/** Options of `cluster.dashboard()`. */
export interface DashboardOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to bind; default `127.0.0.1` (this machine only). */
  host?: string;
  /**
   * Which HTTP server: `'uws'`, `'node'` or `'auto'` (see the cluster option `http`, the default
   * here). Ignored when `httpServer` is given.
   */
  http?: HttpChoice;
  /** Creates the HTTP server; default: as `http` says. */
  httpServer?: HttpServerFactory;
}

/** An open dashboard. */
export interface Dashboard {
  /** The page's address with the token (`…/?token=…`): open it in a browser. Keep it private. */
  readonly url: string;
  /** Where it listens. */
  readonly host: string;
  readonly port: number;
  /** Closes the page's server and its WebSockets. Idempotent. */
  close(): Promise<void>;
}

const STATIC = new URL('./static/', import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/** Only this page's own files; nothing inline, nothing from elsewhere. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Opens a dashboard for `monitor`'s run, guarded by `token`; `warn` hears why `node:http` serves
 * it when `auto` found no uWebSockets.js binary.
 */
export async function openDashboard(monitor: RunMonitor, token: string, opts: DashboardOptions = {}, warn?: (line: string) => void): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidOptionError('dashboard.port', `must be an integer in 0..65535, got ${String(port)}`);
  const assets = new Map(Object.entries(ASSETS).map(([path, a]) => [path, { body: readFileSync(new URL(a.file, STATIC), 'utf8'), type: a.type }]));
  const http: HttpServer = (opts.httpServer ?? httpServerFactory(checkHttpChoice('dashboard.http', opts.http), warn))();
  // Cookies are per host, not per port: the port in the name keeps two dashboards apart.
  let cookie = 'sps_dashboard';

  // Any one of them will do: a cookie left by an earlier run on the same port must not shadow a fresh `?token=`.
  const presented = (req: HttpRequest): (string | undefined)[] => [
    req.headers['x-sps-token'],
    req.headers.authorization?.replace(/^Bearer\s+/i, ''),
    cookieValue(req.headers.cookie, cookie),
    req.query.get('token') ?? undefined,
  ];
  const allowed = (req: HttpRequest): boolean => presented(req).some((p) => secretMatches(token, p));
  // A browser's WebSocket from another site's page carries that site as its Origin: refused, whatever it presents.
  const sameOrigin = (req: HttpRequest): boolean => req.headers.origin === undefined || req.headers.origin === `http://${req.headers.host}`;
  const refused = () =>
    httpResponse(
      401,
      { error: { code: 'SPS_UNAUTHORIZED', message: 'the dashboard needs its token: open the URL that dashboard() returned' } },
      { 'cache-control': 'no-store' },
    );

  for (const [path, asset] of assets) {
    http.route('get', path, (req) => {
      if (!allowed(req)) return refused();
      if (req.query.has('token')) {
        // Trade the token in the address for a cookie, so it leaves the address bar and history.
        return httpResponse(303, '', {
          location: path,
          'set-cookie': `${cookie}=${token}; HttpOnly; SameSite=Strict; Path=/`,
          'cache-control': 'no-store',
        });
      }
      return httpResponse(200, asset.body, { 'content-type': asset.type, ...PAGE_HEADERS });
    });
  }
  http.route('get', '/snapshot', (req) => (allowed(req) ? httpResponse(200, monitor.snapshot(), { 'cache-control': 'no-store' }) : refused()));

  const clients = new Set<WsConnection>();
  let timer: NodeJS.Timeout | undefined;
  const push = (): void => {
    timer = undefined;
    if (clients.size === 0) return;
    const text = JSON.stringify(monitor.snapshot());
    for (const ws of clients) if (ws.bufferedAmount < MAX_BUFFERED) ws.send(text);
  };
  const schedule = (): void => {
    if (!timer && clients.size > 0) timer = setTimeout(push, PUSH_MS);
  };
  const unlisten = monitor.onChange(schedule);
  // Uptimes and rates age even when nothing changes.
  const tick = setInterval(schedule, 1000);
  tick.unref();

  http.websocket('/ws', {
    authorize: (req) => sameOrigin(req) && allowed(req),
    idleTimeoutSeconds: 0,
    maxPayloadLength: 1024,
    open: (ws) => {
      clients.add(ws);
      ws.send(JSON.stringify(monitor.snapshot()));
    },
    close: (ws) => clients.delete(ws),
  });

  let bound: { host: string; port: number };
  try {
    bound = await http.listen(host, port);
  } catch (err) {
    unlisten();
    clearInterval(tick);
    throw err;
  }
  cookie = `sps_dashboard_${bound.port}`;
  const shown = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${bound.port}/?token=${token}`,
    host: bound.host,
    port: bound.port,
    close() {
      closing ??= (async () => {
        unlisten();
        clearInterval(tick);
        if (timer) clearTimeout(timer);
        timer = undefined;
        await http.close(1000);
        clients.clear();
      })();
      return closing;
    },
  };
}
