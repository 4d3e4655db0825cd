/**
 * A plain HTTP server with the bench server's lookup handler, for comparison with the partition
 * server's HTTP edge: `tsx baseline-http.ts <node|uws> <rows>` builds the same rows, listens on a
 * free loopback port, prints `PORT <n>` and serves until SIGTERM.
 *   node — node:http;  uws — uWebSockets.js used directly, without the library's wrapper;
 *   server-uws / server-node — the library's HttpServer (native, or the node:http fallback).
 */
import { createServer } from 'node:http';
import { loadUws } from '../../src/transport/uws-load.js';
import { num, RowStore } from './row-store.js';
import { createNodeHttpServer, createUwsServer, httpResponse } from '../../src/index.js';

const [kind = 'node', rowsArg = '250000'] = process.argv.slice(2);
const store = new RowStore();
for (let i = 0; i < Number(rowsArg); i++) store.add(i);
const lookupBody = (key: string | null): string => JSON.stringify(store.lookup(num(key)) ?? { id: null });

// Exit with the parent, so no baseline outlives a failed benchmark.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(1), 500).unref();

if (kind === 'server-uws' || kind === 'server-node') {
  const http = (kind === 'server-uws' ? createUwsServer : createNodeHttpServer)();
  const headers = { 'content-type': 'application/json' };
  http.route('get', '/app/lookup', (req) => httpResponse(200, lookupBody(req.query.get('key')), headers));
  const { port } = await http.listen('127.0.0.1', 0);
  process.stdout.write(`PORT ${port}\n`);
  process.on('SIGTERM', () => void http.close(0).then(() => process.exit(0)));
} else if (kind === 'node') {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/app/lookup') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(lookupBody(url.searchParams.get('key')));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    process.stdout.write(`PORT ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
} else {
  const { uws } = loadUws();
  const app = uws.App();
  app.get('/app/lookup', (res: any, req: any) => {
    const body = lookupBody(new URLSearchParams(req.getQuery() ?? '').get('key'));
    res.cork(() => res.writeHeader('content-type', 'application/json').end(body));
  });
  app.listen('127.0.0.1', 0, (socket: unknown) => {
    process.stdout.write(`PORT ${socket ? uws.us_socket_local_port(socket) : 0}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
