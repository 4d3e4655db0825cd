import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { Cluster, KeyError, partitionOfKey, type PartitionKey } from '../src/index.js';
import { connectBus } from '../src/transport/bus.js';
import { startNatsServer } from '../src/transport/nats-server.js';
import { keyToken } from '../src/protocol/key-partition.js';
import { subjectsFor } from '../src/protocol/subjects.js';
import { encodeRequest, decodeReply } from '../src/protocol/messages.js';
import type { KeyedRow } from './fixtures/keyed-server.js';
import { testCluster } from './helpers/with-cluster.js';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const KEYED_SERVER = new URL('./fixtures/keyed-server.ts', import.meta.url);

interface Vector {
  key: { string: string } | { int: string };
  token: string;
  fnv1a32: number;
  partitions: Record<string, number>;
}
const VECTORS = (JSON.parse(readFileSync(join(ROOT, 'docs/key-vectors.json'), 'utf8')) as { vectors: Vector[] }).vectors;
const keyOf = (v: Vector): PartitionKey => ('string' in v.key ? v.key.string : BigInt(v.key.int));

test('the TypeScript key function gives the documented vectors (strings, ints, longs, unicode)', (t) => {
  t.true(VECTORS.length >= 20);
  for (const v of VECTORS) {
    t.is(keyToken(keyOf(v)), v.token);
    for (const [n, p] of Object.entries(v.partitions)) t.is(partitionOfKey(keyOf(v), Number(n)), p, `${v.token} of ${n}`);
  }
  // A number and a bigint of the same integer are one key.
  t.is(partitionOfKey(42, 8), partitionOfKey(42n, 8));
  t.is(partitionOfKey(-0, 8), partitionOfKey(0, 8));
});

test('the Python runner gives the same vectors', async (t) => {
  const script = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sps_runner", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
out = []
for v in json.load(open(sys.argv[2]))["vectors"]:
    k = v["key"]["string"] if "string" in v["key"] else int(v["key"]["int"])
    out.append({"token": m.key_token(k), "fnv1a32": m.fnv1a32(m.key_token(k).encode("utf-8")), "partitions": {n: m.partition_of_key(k, int(n)) for n in v["partitions"]}})
bad = []
for k in [True, 1.5, None, [1]]:
    try:
        m.key_token(k)
    except ValueError as e:
        bad.append(str(e))
out.append({"bad": bad, "float": m.key_token(3.0)})
print(json.dumps(out))
`;
  const { stdout } = await run(join(ROOT, '.venv/bin/python'), [
    '-c',
    script,
    join(ROOT, 'src/spark/runner/sps_runner.py'),
    join(ROOT, 'docs/key-vectors.json'),
  ]);
  const got = JSON.parse(stdout) as Record<string, unknown>[];
  const extra = got.pop() as { bad: string[]; float: string };
  t.deepEqual(
    got,
    VECTORS.map((v) => ({ token: v.token, fnv1a32: v.fnv1a32, partitions: v.partitions })),
  );
  t.is(extra.bad.length, 4, 'a bool, a fraction, None and a list are refused');
  t.is(extra.float, '3', 'an integral double is the integer it holds, as in JavaScript');
});

test("nats-server's partition() mapping places every vector key where the library does", async (t) => {
  const counts = Object.keys(VECTORS[0]!.partitions);
  const server = await startNatsServer({ mappings: Object.fromEntries(counts.map((n) => [`k${n}.*`, `o${n}.{{partition(${n},1)}}.{{wildcard(1)}}`])) });
  t.teardown(() => server.stop());
  const nc = await connectBus(server.url, 'key-vectors');
  t.teardown(() => nc.close());
  const landed = new Map<string, string>();
  const sub = nc.subscribe('>');
  // The empty string is no subject token: only the library can route it.
  const routable = VECTORS.filter((v) => v.token !== '');
  const expected = routable.length * counts.length;
  const collecting = (async () => {
    for await (const m of sub) {
      const [out, p, ...token] = m.subject.split('.');
      if (out!.startsWith('o')) landed.set(`${out!.slice(1)}/${token.join('.')}`, p!);
      if (landed.size === expected) break;
    }
  })();
  await nc.flush();
  for (const v of routable) for (const n of counts) nc.publish(`k${n}.${v.token}`, '');
  await collecting;
  for (const v of routable) for (const n of counts) t.is(landed.get(`${n}/${v.token}`), String(v.partitions[n]), `${v.token} of ${n}`);
});

test('bad keys are refused with SPS_BAD_KEY, naming what was wrong', (t) => {
  t.throws(() => partitionOfKey(1.5, 4), { instanceOf: KeyError, message: /1\.5 is a number but not a safe integer/ });
  t.throws(() => partitionOfKey(null, 4), { code: 'SPS_BAD_KEY', message: /got null/ } as never);
  t.throws(() => partitionOfKey(true, 4), { message: /got boolean/ });
  t.throws(() => partitionOfKey('a', 0), { message: /partitions must be a positive integer/ });
});

const ROWS: KeyedRow[] = Array.from({ length: 40 }, (_, i) => ({ id: i % 3 === 0 ? i : `user-${i}`, v: i }));

/** Partition → the rows it returned (its result is its rows). */
async function placement(cluster: Cluster<KeyedRow, unknown, KeyedRow>): Promise<Map<number, KeyedRow[]>> {
  await cluster.stop();
  return cluster.result();
}

test("embedded partitionBy a field places each row on its key's partition, and requestByKey reaches it in one hop", async (t) => {
  const cluster = testCluster<KeyedRow, unknown, KeyedRow>(t, { server: KEYED_SERVER, partitions: 4, data: ROWS, partitionBy: 'id', log: false });
  await cluster.start();
  for (const key of ['user-1', 'user-29', 3, 39]) {
    const owner = await cluster.requestByKey<{ partition: number; has: boolean }>(key, 'owner', { key });
    t.deepEqual(owner, { partition: cluster.partitionOf(key), has: true }, String(key));
  }
  // Partition 0 asks the owner of a key another partition owns, through ctx.requestByKey.
  const key = ROWS.map((r) => r.id).find((k) => cluster.partitionOf(k) !== 0)!;
  t.deepEqual(await cluster.request(0, 'ask', { key }), {
    from: 0,
    partitionOf: cluster.partitionOf(key),
    answer: { partition: cluster.partitionOf(key), has: true },
  });
  const bad = (await cluster.request(0, 'badKey').catch((e: unknown) => e)) as { code: string; message: string };
  t.is(bad.code, 'SPS_BAD_KEY');
  t.regex(bad.message, /Partition 0, endpoint "badKey": Bad key: 1\.5 is a number but not a safe integer/);
  await t.throwsAsync(cluster.requestByKey(1.5, 'owner'), { instanceOf: KeyError });
  const placed = await placement(cluster);
  t.is([...placed.values()].flat().length, ROWS.length);
  t.true([...placed.values()].filter((rows) => rows.length > 0).length > 1, 'the keys spread over several partitions');
  for (const [p, rows] of placed) for (const r of rows) t.is(partitionOfKey(r.id, 4), p, `row ${r.v}`);
});

test('embedded partitionBy a function places by the key it returns', async (t) => {
  const cluster = new Cluster<KeyedRow, unknown, KeyedRow>({
    server: KEYED_SERVER,
    partitions: 3,
    data: ROWS,
    partitionBy: (r) => BigInt(r.v!) * 1_000_000_000_000n,
    log: false,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const placed = await placement(cluster);
  t.is([...placed.values()].flat().length, ROWS.length);
  for (const [p, rows] of placed) for (const r of rows) t.is(partitionOfKey(BigInt(r.v!) * 1_000_000_000_000n, 3), p);
});

test('partitionBy: a row without the field, a bad key, a function on Spark are refused, naming what was wrong', async (t) => {
  const rows = [{ id: 'a' }, { id: 'b' }, { name: 'no id' }];
  const missing = new Cluster({ server: KEYED_SERVER, partitions: 2, data: rows, partitionBy: 'id', log: false });
  t.teardown(() => missing.stop().catch(() => {}));
  await t.throwsAsync(missing.start(), { code: 'SPS_INVALID_OPTION', message: /partitionBy.*row 2 has no field "id"/ } as never);
  const fraction = new Cluster({ server: KEYED_SERVER, partitions: 2, data: [{ id: 0.5 }], partitionBy: 'id', log: false });
  t.teardown(() => fraction.stop().catch(() => {}));
  await t.throwsAsync(fraction.start(), { message: /row 0: field "id": Bad key: 0\.5 is a number but not a safe integer/ });
  t.throws(() => new Cluster({ server: KEYED_SERVER, master: 'local[2]', partitionBy: (r: unknown) => String(r) }), {
    message: /Invalid option "partitionBy": on Spark must name a column/,
  });
  t.throws(() => new Cluster({ server: KEYED_SERVER, partitionBy: 7 as never }), { message: /"partitionBy": must be a row field name or a function/ });
});

test("a plain NATS client reaches a key's owner on the key-routed subject; one-way messages run their handler", async (t) => {
  const lines: string[] = [];
  let sawFailure: () => void;
  const failureLogged = new Promise<void>((r) => (sawFailure = r));
  const log = (line: string): void => {
    lines.push(line);
    if (/one-way message to endpoint "noteFails" failed: \[SPS_HANDLER_ERROR\]|one-way message to endpoint "noteFails" failed/.test(line)) sawFailure();
  };
  const cluster = testCluster<KeyedRow, unknown, KeyedRow>(t, { server: KEYED_SERVER, partitions: 4, data: ROWS, partitionBy: 'id', log });
  await cluster.start();
  const s = subjectsFor(cluster.id!);
  const client = await connectBus(cluster.credentials('client'), 'keyed-client');
  t.teardown(() => client.close());
  const json = natsHeaders();
  json.set('Content-Type', 'application/json');
  for (const key of ['user-2', 'user-35', 9, 'ünïcödé']) {
    const m = await client.request(s.key('owner', keyToken(key)), JSON.stringify({ key }), { timeout: 20_000, headers: json });
    t.deepEqual(m.json(), { ok: true, body: { partition: cluster.partitionOf(key), has: key !== 'ünïcödé' } }, String(key));
  }

  // One-way: on the attempt subject, the stable subject and the key-routed one.
  const owner = cluster.partitionOf('user-5');
  const member = cluster.members[owner]!;
  client.publish(s.endpoint(owner, member.attempt, 'note'), encodeRequest({ via: 'attempt' }));
  client.publish(s.stable(owner, 'note'), encodeRequest({ via: 'stable' }));
  client.publish(s.key('note', 'user-5'), encodeRequest({ via: 'key' }));
  client.publish(s.stable(owner, 'noteFails'), encodeRequest(null));
  await client.flush();
  // The notes request follows the notes on the same connection, so it is answered after them.
  const notes = decodeReply('notes', (await client.request(s.stable(owner, 'notes'), encodeRequest(null), { timeout: 20_000 })).data);
  t.deepEqual(notes, { ok: true, body: [{ via: 'attempt' }, { via: 'stable' }, { via: 'key' }] });
  await failureLogged;
  t.true(lines.some((l) => l.includes('one-way handler threw on purpose')));
});

const natsCli = process.env.SPS_NATS_CLI && existsSync(process.env.SPS_NATS_CLI) ? process.env.SPS_NATS_CLI : undefined;
(natsCli ? test : test.skip)("the nats CLI reaches a key's owner on the key-routed subject", async (t) => {
  const cluster = testCluster<KeyedRow, unknown, KeyedRow>(t, { server: KEYED_SERVER, partitions: 4, data: ROWS, partitionBy: 'id', log: false });
  await cluster.start();
  const access = cluster.credentials('client');
  const home = mkdtempSync(join(tmpdir(), 'sps-keyed-cli-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeFileSync(join(home, 'seed'), (access.auth as { nkeySeed: string }).nkeySeed, { mode: 0o600 });
  const s = subjectsFor(cluster.id!);
  const { stdout } = await run(
    natsCli!,
    [
      '--server',
      access.url,
      '--nkey',
      join(home, 'seed'),
      '--inbox-prefix',
      access.inboxPrefix!,
      'req',
      '-H',
      'Content-Type:application/json',
      s.key('owner', 'user-7'),
      '{"key":"user-7"}',
    ],
    { env: { ...process.env, HOME: home } },
  );
  t.true(stdout.includes(JSON.stringify({ ok: true, body: { partition: cluster.partitionOf('user-7'), has: true } })), stdout);
});
