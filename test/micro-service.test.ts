/**
 * Partitions as NATS micro services: every attempt is an instance of the run's service (what
 * `nats micro ls/info/stats` show), its requests are counted in the service's stats, a stable
 * subject per partition and endpoint reaches the current attempt (also after a SIGKILL), and the
 * JSON content mode lets clients without msgpack call endpoints. One embedded cluster serves every
 * case, in order; the SIGKILL comes last.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { headers, type Msg, type NatsConnection } from '@nats-io/nats-core';
import type { ServiceInfo, ServiceStats } from '@nats-io/services';
import { Cluster, microServices } from '../src/index.js';
import { decodeReply, encodeRegistration, encodeReply, encodeRequest, encodeState } from '../src/protocol/messages.js';
import { subjectsFor, type Subjects } from '../src/protocol/subjects.js';
import { connectBus } from '../src/transport/bus.js';
import { CapturingLauncher } from './helpers/capturing-launcher.js';
import { TEST_SERVER, waitUntil } from './helpers/harness.js';

const run = promisify(execFile);
const PARTITIONS = 2;

let cluster: Cluster;
let client: NatsConnection;
let s: Subjects;

test.before(async () => {
  // Rows 1..4 in two partitions: partition 0 sums to 3, partition 1 to 7; `boom` throws on partition 0.
  cluster = new Cluster({ server: TEST_SERVER, data: [1, 2, 3, 4], partitions: PARTITIONS, config: { boom: [0] }, log: false });
  await cluster.start();
  s = subjectsFor(cluster.id!);
  // What other services on the bus get: the client identity, nothing more.
  client = await connectBus(cluster.credentials('client'), 'micro-test-client');
});

test.after.always(async () => {
  await client?.close().catch(() => {});
  await cluster?.stop().catch(() => {});
});

/** Every instance's answer to one `$SRV` verb, through the services library's client. */
async function ask<T>(verb: 'info' | 'stats' | 'ping', expected = PARTITIONS): Promise<T[]> {
  const micro = microServices(client).client({ strategy: 'count', maxMessages: expected, maxWait: 20_000 });
  const out: T[] = [];
  for await (const r of await micro[verb](s.service)) out.push(r as T);
  const partition = (x: T): number => Number((x as ServiceInfo).metadata?.partition);
  return out.sort((a, b) => partition(a) - partition(b));
}

function jsonRequest(subject: string, body: string): Promise<Msg> {
  const h = headers();
  h.set('Content-Type', 'application/json');
  return client.request(subject, body, { timeout: 20_000, headers: h });
}

test.serial('every partition is an instance of the run’s micro service, with its partition, attempt, host and port', async (t) => {
  const pings = await ask<{ name: string }>('ping');
  t.deepEqual(
    pings.map((p) => p.name),
    [s.service, s.service],
  );
  const infos = await ask<ServiceInfo>('info');
  t.deepEqual(
    infos.map((i) => i.metadata),
    cluster.members.map((m) => ({ partition: String(m.partition), attempt: String(m.attempt), host: m.host, port: m.port === null ? '' : String(m.port) })),
  );
  for (const info of infos) {
    const p = Number(info.metadata?.partition);
    t.is(info.version, '2.0.0');
    const endpoints = [...info.endpoints].sort((a, b) => a.name.localeCompare(b.name));
    t.deepEqual(
      endpoints.map((e) => e.name),
      [...cluster.members[p]!.endpoints].sort(),
    );
    for (const e of endpoints) {
      t.is(e.subject, s.endpoint(p, 0, e.name));
      t.deepEqual(e.metadata, { stable: s.stable(p, e.name) });
    }
  }
  t.not(infos[0]!.id, infos[1]!.id);
});

test.serial('stats count each request, each error and the processing time, also of async handlers', async (t) => {
  const before = await ask<ServiceStats>('stats');
  const of = (st: ServiceStats[], p: number, name: string) => st[p]!.endpoints!.find((e) => e.name === name)!;
  t.is(await cluster.request(1, 'sum'), 7);
  t.deepEqual((await jsonRequest(s.stable(1, 'sum'), '')).json(), { ok: true, body: 7 });
  await t.throwsAsync(cluster.request(0, 'boom'), { code: 'TEST_BOOM' });
  t.is(await cluster.request(1, 'later', { ms: 40 }), 'later');
  await t.throwsAsync(cluster.request(1, 'later', { ms: 1, fail: true }), { code: 'TEST_LATER' });
  const after = await ask<ServiceStats>('stats');

  // One request on the attempt subject, one on the stable subject.
  t.is(of(after, 1, 'sum').num_requests - of(before, 1, 'sum').num_requests, 2);
  t.is(of(after, 1, 'sum').num_errors, of(before, 1, 'sum').num_errors);
  t.is(of(after, 0, 'boom').num_errors - of(before, 0, 'boom').num_errors, 1);
  t.regex(of(after, 0, 'boom').last_error ?? '', /\[TEST_BOOM\] boom on partition 0/);
  const later = of(after, 1, 'later');
  t.is(later.num_requests - of(before, 1, 'later').num_requests, 2);
  t.is(later.num_errors - of(before, 1, 'later').num_errors, 1);
  t.regex(later.last_error ?? '', /TEST_LATER/);
  // The 40 ms the async handler waited are in its processing time (nanoseconds), not just its synchronous start.
  t.true(later.processing_time - of(before, 1, 'later').processing_time >= 40e6, `processing time ${later.processing_time} ns`);
});

test.serial('JSON mode: a Content-Type header gets JSON answers and JSON errors with their stable codes, on both subjects', async (t) => {
  const sum = await jsonRequest(s.stable(1, 'sum'), '');
  t.deepEqual(sum.json(), { ok: true, body: 7 });
  t.is(sum.headers?.get('Content-Type'), 'application/json');
  t.deepEqual((await jsonRequest(s.endpoint(0, 0, 'echo'), '{"a":[1,2],"b":"x"}')).json(), { ok: true, body: { a: [1, 2], b: 'x' } });
  t.deepEqual((await jsonRequest(s.stable(0, 'boom'), 'null')).json(), { ok: false, error: { code: 'TEST_BOOM', message: 'boom on partition 0' } });

  const bad = await jsonRequest(s.stable(0, 'echo'), '{"a": 1');
  const err = bad.json<{ ok: false; error: { code: string; message: string } }>();
  t.is(err.error.code, 'SPS_MALFORMED_MESSAGE');
  t.regex(err.error.message, new RegExp(`"${s.stable(0, 'echo').replace(/\./g, '\\.')}": the body of a application/json request is not JSON`));
  t.is(bad.headers?.get('Nats-Service-Error-Code'), '400');

  const unknown = (await jsonRequest(s.stable(1, 'nope'), '')).json<{ ok: false; error: { code: string; message: string } }>();
  t.like(unknown.error, { code: 'SPS_UNKNOWN_ENDPOINT' });
  t.regex(unknown.error.message, /partition 1 has no endpoint "nope" \(has: .*sum/);
  t.like((await jsonRequest(s.stable(1, 'whoami'), '')).json(), { ok: true, body: { partition: 1, attempt: 0 } });
  // Without the header: the msgpack envelope, as before.
  t.like(decodeReply('r', (await client.request(s.stable(1, 'sum'), encodeRequest(null), { timeout: 20_000 })).data), { ok: true, body: 7 });
});

test.serial('the Python example (nats-py) lists the instances via $SRV.INFO and calls each by its stable subject in JSON', async (t) => {
  const python = fileURLToPath(new URL('../.venv/bin/python', import.meta.url));
  const script = fileURLToPath(new URL('../examples/05-json-client.py', import.meta.url));
  const { stdout } = await run(python, [script, 'echo', '{"hello": "json"}', String(PARTITIONS)], {
    env: { ...process.env, SPS_CLIENT_BUS: JSON.stringify(cluster.credentials('client')), SPS_CLUSTER_ID: cluster.id! },
  });
  const out = JSON.parse(stdout) as {
    instances: { partition: number; attempt: number; port: number | null; endpoints: string[] }[];
    replies: Record<string, unknown>;
  };
  t.deepEqual(
    out.instances.map((i) => [i.partition, i.attempt, i.port]),
    cluster.members.map((m) => [m.partition, m.attempt, m.port]),
  );
  t.true(out.instances.every((i) => i.endpoints.includes('echo')));
  t.deepEqual(out.replies, { 0: { ok: true, body: { hello: 'json' } }, 1: { ok: true, body: { hello: 'json' } } });
});

/** The `nats` CLI (natscli) from SPS_NATS_CLI or PATH; no registry we use packages it, so it is optional. */
const natsCli = [process.env.SPS_NATS_CLI, ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'nats'))].find((f) => !!f && existsSync(f));
if (!natsCli) console.log('micro-service: no `nats` CLI (set SPS_NATS_CLI or put it on PATH): its test is skipped');

(natsCli ? test.serial : test.serial.skip)('the nats CLI lists the partitions (nats micro ls/stats) and calls one in JSON (nats req)', async (t) => {
  const access = cluster.credentials('client');
  const home = mkdtempSync(join(tmpdir(), 'sps-nats-cli-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  // The seed goes in a 0600 file, never in argv.
  writeFileSync(join(home, 'seed'), (access.auth as { nkeySeed: string }).nkeySeed, { mode: 0o600 });
  const nats = async (...args: string[]): Promise<string> =>
    (
      await run(natsCli!, ['--server', access.url, '--nkey', join(home, 'seed'), '--inbox-prefix', access.inboxPrefix!, ...args], {
        env: { ...process.env, HOME: home },
      })
    ).stdout;
  const ls = JSON.parse(await nats('micro', 'ls', s.service, '--json')) as { metadata: Record<string, string> }[];
  t.deepEqual(ls.map((i) => i.metadata.partition).sort(), ['0', '1']);
  const stats = JSON.parse(await nats('micro', 'stats', s.service, '--json')) as {
    metadata: Record<string, string>;
    endpoints: { name: string; num_requests: number; num_errors: number }[];
  }[];
  t.is(stats.length, PARTITIONS);
  // The earlier cases called partition 1's sum and made partition 0's boom fail.
  const endpoint = (p: string, name: string) => stats.find((i) => i.metadata.partition === p)!.endpoints.find((e) => e.name === name)!;
  t.true(endpoint('1', 'sum').num_requests >= 2);
  t.true(endpoint('0', 'boom').num_errors >= 1);
  t.regex(await nats('req', '-H', 'Content-Type:application/json', s.stable(1, 'sum'), ''), /\{"ok":true,"body":7\}/);
});

test.serial('after a SIGKILL the stable subject reaches the new attempt, and the service lists it instead of the old one', async (t) => {
  const victim = cluster.members[1]!;
  process.kill(victim.pid, 'SIGKILL');
  await waitUntil(() => cluster.members[1]!.attempt === victim.attempt + 1 && cluster.members[1]!.state === 'serving', 60_000, 'partition 1 serving again');
  const who = (await jsonRequest(s.stable(1, 'whoami'), '')).json<{ ok: true; body: { attempt: number; pid: number } }>();
  t.like(who.body, { attempt: victim.attempt + 1, pid: cluster.members[1]!.pid });
  const infos = await ask<ServiceInfo>('info');
  t.deepEqual(
    infos.map((i) => [i.metadata?.partition, i.metadata?.attempt]),
    [
      ['0', '0'],
      ['1', String(victim.attempt + 1)],
    ],
  );
  t.is(infos[1]!.endpoints.find((e) => e.name === 'sum')!.subject, s.endpoint(1, victim.attempt + 1, 'sum'));
});

test.serial('a replaced attempt that is still alive stops answering the stable subject; a request during the switch waits for the new attempt', async (t) => {
  // A run of its own, whose credentials let the test play partition 1's next attempt.
  const launcher = await CapturingLauncher.create([1, 2, 3, 4], 2);
  const own = new Cluster({ server: TEST_SERVER, partitions: 2, launcher, log: false, stopTimeoutMs: 3000 });
  t.teardown(() => own.stop().catch(() => {}));
  await own.start();
  const ss = subjectsFor(own.id!);
  const caller = await connectBus(own.credentials('client'), 'micro-test-caller');
  t.teardown(() => caller.close());
  const stableSum = async (): Promise<unknown> => {
    try {
      const reply = decodeReply('r', (await caller.request(ss.stable(1, 'sum'), encodeRequest(null), { timeout: 20_000 })).data);
      return reply.ok ? reply.body : reply.error.code;
    } catch (err) {
      return (err as Error).message;
    }
  };
  t.is(await stableSum(), 7);

  // Attempt 99 registers while attempt 0 still runs, and is not serving yet: it listens on its
  // attempt subject only, so every stable request still reaches attempt 0.
  const next = await connectBus(launcher.plan!.busFor(1), 'attempt-99');
  t.teardown(() => next.close());
  const answer99 = { callback: (_e: unknown, m: { respond(data: Uint8Array): boolean }) => void m.respond(encodeReply({ ok: true, body: 'attempt 99' })) };
  next.subscribe(ss.endpoint(1, 99, '*'), answer99);
  // The view naming attempt 99 reaches attempt 0 in the same delivery as this subscription: a
  // request sent after it arrived here reaches attempt 0 after the view.
  const views = next.subscribe(ss.members, { max: 1 });
  const proof = launcher.plan!.secrets.attempt(1, 99).proof;
  await next.request(ss.register(1), encodeRegistration({ attempt: 99, host: '127.0.0.1', port: null, pid: process.pid, endpoints: ['sum'], proof }), {
    timeout: 20_000,
  });
  for await (const _ of views) break;
  // The switch under way: attempt 0 knows it is replaced, attempt 99 does not serve yet.
  const during = stableSum();
  // Routed by the server (to attempt 0, the only member of the queue) before attempt 99 joins it.
  await caller.flush();
  // Attempt 99 joins the stable queue, then reports serving, as an attempt's openEndpoints does.
  next.subscribe(ss.stable(1, '*'), { queue: 'p1', ...answer99 });
  await next.flush();
  next.publish(ss.state(1), encodeState({ attempt: 99, state: 'serving', pid: process.pid }));
  t.is(await during, 'attempt 99', 'the request made during the switch is answered by the new attempt, not refused');
  await waitUntil(() => own.members[1]?.state === 'serving' && own.members[1]?.attempt === 99, 20_000, 'attempt 99 serving');
  const answers = await Promise.all(Array.from({ length: 20 }, stableSum));
  t.deepEqual(new Set(answers), new Set(['attempt 99']));
  // Attempt 0 is alive and still answers its own attempt subject.
  t.like(decodeReply('r', (await caller.request(ss.endpoint(1, 0, 'sum'), encodeRequest(null), { timeout: 20_000 })).data), { ok: true, body: 7 });
});
