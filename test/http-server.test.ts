/**
 * One suite, two servers: every HttpServer test runs against native uWebSockets.js and against
 * the node:http + ws fallback, so both answer alike (routes, request fields, errors, limits,
 * WebSockets, closing). Where no uWebSockets.js binary loads (another Node ABI or an older glibc),
 * the uWS half is skipped saying why; the fallback half always runs.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { createNodeHttpServer, createUwsServer, httpResponse, type HttpServer, type HttpServerFactory, type WsConnection } from '../src/index.js';
import { uwsUnavailable } from '../src/transport/uws-load.js';
import { waitUntil } from './helpers/harness.js';
import { openWs } from './helpers/ws-client.js';

const SERVERS: [name: string, factory: HttpServerFactory][] = [
  ['uws', createUwsServer],
  ['node', createNodeHttpServer],
];
const noUws = uwsUnavailable();
if (noUws) console.log(`uws half skipped: ${noUws}`);

/** Runs `body` against each server, on a fresh server that is closed after the test. */
function both(title: string, body: (t: ExecutionContext, http: HttpServer, name: string) => Promise<void>): void {
  for (const [name, factory] of SERVERS) {
    (name === 'uws' && noUws ? test.skip : test)(`${name}: ${title}`, async (t) => {
      const http = factory();
      t.teardown(() => http.close(0));
      await body(t, http, name);
    });
  }
}

/** Listens on a free loopback port and returns its base URL. */
async function serve(http: HttpServer): Promise<string> {
  const { port } = await http.listen('127.0.0.1', 0);
  return `http://127.0.0.1:${port}`;
}

/** A raw TCP connection to the server: `received(text)` resolves once what it received holds `text`. */
function rawSocket(base: string): { socket: Socket; received: (text: string) => Promise<void>; closed: Promise<void> } {
  const socket = connect(Number(new URL(base).port), '127.0.0.1');
  let got = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (d) => {
    got += d.toString('latin1');
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const received = async (text: string): Promise<void> => {
    while (!got.includes(text)) await new Promise<void>((r) => waiters.push(r));
  };
  return { socket, received, closed };
}

/** A GET route whose handler answers `answer` once released; `started` resolves when it runs. */
function heldRoute(http: HttpServer, path: string, answer: string): { started: Promise<void>; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let running!: () => void;
  const started = new Promise<void>((r) => (running = r));
  http.route('get', path, async () => {
    running();
    await released;
    return answer;
  });
  return { started, release };
}

both('routes: exact paths before prefixes, a method before any, unknown paths 404; the request as handlers see it', async (t, http) => {
  http.route('get', '/a', (req) => ({ method: req.method, path: req.path, q: req.query.getAll('q'), header: req.headers['x-mixed-case'] }));
  http.route('any', '/a', (req) => `any ${req.method}`);
  http.route('post', '/p/*', (req) => ({ prefix: 'p', path: req.path, got: req.json() }));
  http.route('any', '/p/deeper/*', (req) => `deeper ${req.method} ${req.path}`);
  const base = await serve(http);
  t.deepEqual(await (await fetch(`${base}/a?q=1&q=2`, { headers: { 'X-Mixed-Case': 'Yes' } })).json(), {
    method: 'GET',
    path: '/a',
    q: ['1', '2'],
    header: 'Yes',
  });
  t.is(await (await fetch(`${base}/a`, { method: 'PUT' })).text(), 'any PUT');
  t.deepEqual(await (await fetch(`${base}/p/x/y`, { method: 'POST', body: '{"n":1}' })).json(), { prefix: 'p', path: '/p/x/y', got: { n: 1 } });
  t.is(await (await fetch(`${base}/p/deeper/z`, { method: 'DELETE' })).text(), 'deeper DELETE /p/deeper/z');
  const missing = await fetch(`${base}/nope?x=1`);
  t.is(missing.status, 404);
  t.deepEqual(await missing.json(), { error: { code: 'SPS_NO_ROUTE', message: 'no route for GET /nope' } });
});

both('answers: text, bytes, JSON, 204, explicit statuses and headers, async handlers, throws and values with no JSON form', async (t, http) => {
  http.route('get', '/text', () => 'plain');
  http.route('get', '/bytes', () => new Uint8Array([1, 2, 3]));
  http.route('get', '/none', () => undefined);
  http.route('get', '/later', async (req) => {
    await new Promise((r) => setImmediate(r));
    return httpResponse(201, `later ${req.query.get('q')}`, { 'x-test': 'yes' });
  });
  http.route('get', '/throws', () => {
    throw Object.assign(new Error('route refused'), { code: 'TEST_THROW' });
  });
  http.route('get', '/rejects', async () => {
    throw new Error('async refusal');
  });
  http.route('get', '/bigint', () => ({ n: 1n }));
  const base = await serve(http);
  const text = await fetch(`${base}/text`);
  t.is(text.headers.get('content-type'), 'text/plain; charset=utf-8');
  t.is(await text.text(), 'plain');
  const bytes = await fetch(`${base}/bytes`);
  t.is(bytes.headers.get('content-type'), 'application/octet-stream');
  t.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([1, 2, 3]));
  t.is((await fetch(`${base}/none`)).status, 204);
  const later = await fetch(`${base}/later?q=7`);
  t.is(later.status, 201);
  t.is(later.headers.get('x-test'), 'yes');
  t.is(await later.text(), 'later 7');
  const thrown = await fetch(`${base}/throws`);
  t.is(thrown.status, 500);
  t.deepEqual(await thrown.json(), { error: { code: 'TEST_THROW', message: 'route refused' } });
  t.deepEqual(await (await fetch(`${base}/rejects`)).json(), { error: { code: 'SPS_HANDLER_ERROR', message: 'async refusal' } });
  const bigint = await fetch(`${base}/bigint`);
  t.is(bigint.status, 500);
  t.like(((await bigint.json()) as { error: object }).error, { code: 'SPS_ENCODE' });
});

both('bodies: 3 MiB arrives whole, one over 16 MiB is refused with 413, and the server serves on', async (t, http) => {
  http.route('post', '/size', (req) => ({ bytes: req.body.length, first: req.body[0], last: req.body.at(-1) }));
  const base = await serve(http);
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  big[big.length - 1] = 9;
  t.deepEqual(await (await fetch(`${base}/size`, { method: 'POST', body: big })).json(), { bytes: big.length, first: 7, last: 9 });
  const tooBig = await fetch(`${base}/size`, { method: 'POST', body: Buffer.alloc(17 * 1024 * 1024) }).catch((err: Error) => err);
  // The server answers 413 as soon as the limit is passed; the client may see the answer or a reset.
  if (tooBig instanceof Response) {
    t.is(tooBig.status, 413);
    t.like(((await tooBig.json()) as { error: object }).error, { code: 'SPS_BODY_TOO_LARGE' });
  } else t.regex(String(tooBig.cause ?? tooBig.message), /ECONNRESET|EPIPE|other side closed|fetch failed|SocketError/);
  t.deepEqual(await (await fetch(`${base}/size`, { method: 'POST', body: 'ok' })).json(), { bytes: 2, first: 111, last: 107 });
});

both('a connection that never finishes its request headers is closed by the server', async (t, http) => {
  const base = await serve(http);
  const raw = rawSocket(base);
  raw.socket.write('GET /a HTTP/1.1\r\nHost: x\r\n');
  await raw.closed;
  t.pass();
});

both('close() waits for a running request, and after the grace period gives up naming it', async (t, http) => {
  const { started, release } = heldRoute(http, '/slow', 'late');
  http.route('get', '/quick', async () => {
    await new Promise((r) => setImmediate(r));
    return 'quick';
  });
  const base = await serve(http);
  t.teardown(() => release());
  t.is(await (await fetch(`${base}/quick`)).text(), 'quick');
  t.deepEqual(http.inFlight?.(), []);
  // The connection is cut when close() gives up: the client sees a network error.
  const answer = fetch(`${base}/slow`).then(
    (r) => r.status,
    () => 'cut',
  );
  await started;
  t.deepEqual(http.inFlight?.(), ['GET /slow']);
  await http.close(200);
  t.deepEqual(http.inFlight?.(), ['GET /slow']);
  t.is(await answer, 'cut');
  release();
  await waitUntil(() => http.inFlight?.().length === 0, 5_000, 'the handler to settle');
});

both('close() lets a request that finishes within the grace period answer', async (t, http) => {
  const { started, release } = heldRoute(http, '/slow', 'answered');
  const base = await serve(http);
  const answer = fetch(`${base}/slow`).then((r) => r.text());
  await started;
  const closing = http.close(60_000);
  release();
  t.is(await answer, 'answered');
  await closing;
  t.deepEqual(http.inFlight?.(), []);
});

both('an address it cannot bind is an SPS_HTTP_LISTEN error naming it', async (t, http) => {
  // TEST-NET-1: never an address of this machine.
  const err = await t.throwsAsync(http.listen('192.0.2.1', 0), { code: 'SPS_HTTP_LISTEN' });
  t.regex(err!.message, /192\.0\.2\.1:0/);
});

both('WebSockets: text and binary messages, a throw closes with 1011, open sockets get 1001 on close()', async (t, http) => {
  const closes: number[] = [];
  http.websocket('/ws', {
    open: (ws) => ws.send('hello'),
    message: (ws, data) => {
      if (data === 'throw') throw new Error('asked to throw');
      ws.send(typeof data === 'string' ? `echo:${data}` : data);
    },
    close: (_ws, code) => closes.push(code),
  });
  const base = await serve(http);
  const url = base.replace('http:', 'ws:') + '/ws';
  const a = await openWs(url);
  t.teardown(() => a.ws.terminate());
  t.is(await a.next(), 'hello');
  a.ws.send('hi');
  t.is(await a.next(), 'echo:hi');
  a.ws.send(Buffer.from([1, 2, 3]));
  t.deepEqual(await a.next(), Buffer.from([1, 2, 3]));
  a.ws.send('throw');
  t.is(await a.closed, 1011);
  const b = await openWs(url);
  t.teardown(() => b.ws.terminate());
  t.is(await b.next(), 'hello');
  await http.close(1000);
  t.is(await b.closed, 1001);
  t.is(closes.length, 2);
});

both('WebSockets: authorize sees the upgrade request and refuses with 401; an unknown path is 404', async (t, http) => {
  let seen: { path?: string; token?: string | null; header?: string } = {};
  http.websocket('/ws', {
    authorize: (req) => {
      seen = { path: req.path, token: req.query.get('token'), header: req.headers['x-sps-token'] };
      return req.query.get('token') === 'right';
    },
    message: (ws, data) => void ws.send(data),
  });
  http.websocket('/throws', {
    authorize: () => {
      throw new Error('check failed');
    },
  });
  const base = (await serve(http)).replace('http:', 'ws:');
  await t.throwsAsync(openWs(`${base}/ws?token=wrong`, { headers: { 'x-sps-token': 'h' } }), { message: 'refused with 401' });
  t.deepEqual(seen, { path: '/ws', token: 'wrong', header: 'h' });
  await t.throwsAsync(openWs(`${base}/throws`), { message: 'refused with 401' });
  await t.throwsAsync(openWs(`${base}/elsewhere`), { message: 'refused with 404' });
  const ok = await openWs(`${base}/ws?token=right`);
  t.teardown(() => ok.ws.terminate());
  ok.ws.send('in');
  t.is(await ok.next(), 'in');
});

both('WebSockets: a message over maxPayloadLength closes the connection', async (t, http) => {
  let got = 0;
  http.websocket('/ws', { maxPayloadLength: 1024, message: () => void got++ });
  const base = (await serve(http)).replace('http:', 'ws:');
  const c = await openWs(`${base}/ws`);
  t.teardown(() => c.ws.terminate());
  c.ws.send(Buffer.alloc(1024));
  c.ws.send(Buffer.alloc(1025));
  const code = await c.closed;
  t.not(code, 1000);
  t.is(got, 1);
});

both('WebSockets: a peer that answers no ping is closed after idleTimeoutSeconds; one that answers stays', async (t, http) => {
  const closes: number[] = [];
  let closedOnServer!: () => void;
  const serverSaw = new Promise<void>((r) => (closedOnServer = r));
  http.websocket('/ws', {
    idleTimeoutSeconds: 8,
    close: (_ws, code) => {
      closes.push(code);
      closedOnServer();
    },
  });
  const base = (await serve(http)).replace('http:', 'ws:');
  const answering = await openWs(`${base}/ws`);
  t.teardown(() => answering.ws.terminate());
  const silent = await openWs(`${base}/ws`, { autoPong: false });
  t.teardown(() => silent.ws.terminate());
  await silent.closed;
  await serverSaw;
  t.is(answering.ws.readyState, WebSocket.OPEN);
  t.is(closes.length, 1);
});

both('WebSockets: bufferedAmount grows and send() reports backpressure while the peer does not read', async (t, http) => {
  let conn!: WsConnection;
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  http.websocket('/ws', {
    open: (ws) => {
      conn = ws;
      opened();
    },
  });
  const base = await serve(http);
  // A raw client that upgrades, then stops reading: the server's sends pile up.
  const raw = rawSocket(base);
  raw.socket.write(
    'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  await open;
  await raw.received('HTTP/1.1 101 ');
  raw.socket.pause();
  const chunk = new Uint8Array(256 * 1024);
  let sent = 0;
  while (conn.send(chunk) && sent < 4096) sent++;
  t.true(sent < 4096, 'send() never reported backpressure');
  t.true(conn.bufferedAmount > 0);
  raw.socket.destroy();
});
