/**
 * The values mapping (docs/protocol.md "Values") on every path of a real cluster: a reply to
 * `cluster.request` and `requestAll`, a peer's reply to `ctx.request`, a request's payload, a
 * collective's value, a `buildResult` record, a JSON-mode reply, and what a Python (nats-py + msgpack) client reads.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { Cluster } from '../src/index.js';
import { subjectsFor, type Subjects } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { kinds, typesOf } from './fixtures/values-server.js';

const run = promisify(execFile);

let cluster: Cluster;
let client: NatsConnection;
let s: Subjects;

test.before(async () => {
  cluster = new Cluster({
    server: { module: new URL('./fixtures/values-server.ts', import.meta.url), export: 'ValuesServer' },
    data: [1, 2],
    partitions: 2,
    log: false,
  });
  await cluster.start();
  s = subjectsFor(cluster.id!);
  client = await connectBus(cluster.credentials('client'), 'values-test-client');
});

test.after.always(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop().catch(() => {});
});

/** What every Node receiver gets: the same value, bytes as a Buffer (a Uint8Array). */
const expected = (): Record<string, unknown> => ({ ...kinds(), bytes: Buffer.from([1, 2, 3]) });

test.serial('a reply keeps its typed arrays, bigints, Dates, Maps and Sets over request and requestAll', async (t) => {
  const reply = await cluster.request<Record<string, unknown>>(0, 'kinds');
  t.deepEqual(reply, expected());
  t.deepEqual(typesOf(reply), typesOf(expected()));
  const all = await cluster.requestAll<Record<string, unknown>>('kinds');
  for (const p of [0, 1]) t.deepEqual(all.get(p), { ok: true, value: expected() });
});

test.serial('a peer’s reply to ctx.request arrives in the worker as the same kinds', async (t) => {
  const { got, types } = await cluster.request<{ got: unknown; types: unknown }>(1, 'peer');
  t.deepEqual(types, typesOf(expected()));
  t.deepEqual(got, expected());
});

test.serial('a collective’s value keeps the kinds inside it too (allGather)', async (t) => {
  const all = await cluster.requestAll('gather');
  for (const p of [0, 1]) t.deepEqual(all.get(p), { ok: true, value: typesOf(expected()) });
});

test.serial('a request’s payload reaches the handler as the same kinds', async (t) => {
  const { payload, types } = await cluster.request<{ payload: unknown; types: unknown }>(0, 'echo', kinds());
  t.deepEqual(types, typesOf(expected()));
  t.deepEqual(payload, expected());
});

test.serial('a value that cannot travel fails the request with SPS_ENCODE naming the endpoint and where; the partition keeps serving', async (t) => {
  await t.throwsAsync(cluster.request(0, 'bad'), {
    code: 'SPS_ENCODE',
    message: /endpoint "bad": reply cannot be encoded: reply\.items\[2\]\.fn: a function cannot be sent/,
  });
  await t.throwsAsync(cluster.request(0, 'echo', { a: [Symbol('s')] }), { code: 'SPS_ENCODE', message: /request\.a\[0\]: a symbol cannot be sent/ });
  await t.throwsAsync(cluster.request(0, 'echo', 2n ** 70n), { code: 'SPS_ENCODE', message: /request: 1180591620717411303424 does not fit in 64 bits/ });
  t.like(await cluster.request(0, 'kinds'), { big: 2n ** 60n });
});

test.serial('a JSON-mode reply carries each kind as JSON data', async (t) => {
  const h = headers();
  h.set('Content-Type', 'application/json');
  const reply = (await client.request(s.stable(0, 'kinds'), '', { timeout: 20_000, headers: h })).json();
  t.deepEqual(reply, {
    ok: true,
    body: {
      f32: [1.5, -2.25],
      f64: [Math.PI],
      i8: [-1, 127],
      i16: [-300],
      i32: [-70000, 3],
      u16: [65535],
      u32: [4294967295],
      clamped: [0, 255],
      bytes: [1, 2, 3],
      i64: ['-4611686018427387904', 5],
      u64: ['18446744073709551615'],
      big: '1152921504606846976',
      date: '2026-01-02T03:04:05.678Z',
      map: { 1: 'one', k: ['x'] },
      set: [1, 'two', [3]],
      nested: [{ f: [0.5] }],
    },
  });
});

test.serial('a Python client (nats-py + msgpack) reads each kind: typed arrays, Sets and Maps as the documented extensions', async (t) => {
  const python = fileURLToPath(new URL('../.venv/bin/python', import.meta.url));
  const script = fileURLToPath(new URL('./fixtures/values-client.py', import.meta.url));
  const { stdout } = await run(python, [script, s.stable(0, 'kinds')], {
    env: { ...process.env, SPS_CLIENT_BUS: JSON.stringify(cluster.credentials('client')) },
  });
  const got = JSON.parse(stdout) as Record<string, { raw: string; code: number | null; type: string; value: unknown }>;
  const typed = {
    f32: [1.5, -2.25],
    f64: [Math.PI],
    i8: [-1, 127],
    i16: [-300],
    i32: [-70000, 3],
    u16: [65535],
    u32: [4294967295],
    clamped: [0, 255],
    i64: [-(2 ** 62), 5],
  };
  for (const [k, value] of Object.entries(typed)) t.deepEqual(got[k], { raw: 'ExtType', code: 0x74, type: 'array', value }, k);
  // Numbers beyond 2^53 are compared in Python's own digits (JSON.parse would round them).
  t.regex(stdout, /"u64": \{"raw": "ExtType", "code": 116, "type": "array", "value": \[18446744073709551615\]\}/);
  t.regex(stdout, /"big": \{"raw": "int", "code": null, "type": "int", "value": 1152921504606846976\}/);
  t.deepEqual(got.bytes, { raw: 'bytes', code: null, type: 'bytes', value: [1, 2, 3] });
  t.deepEqual(got.date, { raw: 'Timestamp', code: null, type: 'datetime', value: '2026-01-02T03:04:05.678000+00:00' });
  // The Set holds a Float32Array, which Python cannot hash: the hook gives a list.
  t.deepEqual(got.set, { raw: 'ExtType', code: 83, type: 'list', value: [1, 'two', [3]] });
  t.deepEqual(got.map, { raw: 'ExtType', code: 77, type: 'dict', value: { 1: 'one', k: ['x'] } });
  t.deepEqual(got.nested, { raw: 'list', code: null, type: 'list', value: [{ f: [0.5], none: null }] });
});

test.serial('a buildResult record keeps its kinds on the way to the driver', async (t) => {
  await cluster.stop();
  for (const p of [0, 1]) t.deepEqual(cluster.result().get(p), [expected()]);
});
