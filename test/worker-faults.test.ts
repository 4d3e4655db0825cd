import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { connect } from '@nats-io/transport-node';
import { RequestError } from '../src/index.js';
import { encodeFrame, readFrames } from '../src/transport/frames.js';
import { writeResults } from '../src/worker/result-channel.js';
import { formatLogLine } from '../src/log/log-format.js';
import { firstLine, isAlive, sharedNats, waitUntil } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());
const FAULT_SERVER = new URL('./fixtures/fault-server.ts', import.meta.url);

/** True once the process is gone or a zombie (exited, but its stopped parent cannot reap it). */
function hasExited(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Subscribes to the fault server's `started` announcements; resolves once the subscription is live. */
async function watchStarted(url: string, clusterId: string) {
  const nc = await connect({ servers: url });
  const started = new Set<string>();
  nc.subscribe(`sps.${clusterId}.app.started`, {
    callback: (_err, msg) => {
      started.add(msg.string());
    },
  });
  await nc.flush();
  return {
    started,
    release: async () => {
      nc.publish(`sps.${clusterId}.app.release`);
      await nc.flush();
    },
    close: () => nc.close(),
  };
}

test.serial('a reply that cannot be encoded is an SPS_ENCODE error, and the same attempt keeps serving (NATS and HTTP)', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: FAULT_SERVER, data: [1, 2, 3], partitions: 1, natsUrl: server.url, log: false }, async (cluster) => {
    const { pid } = cluster.members[0]!;
    for (const endpoint of ['bigint', 'bigint_async', 'circular', 'circular_async', 'function']) {
      const err = await t.throwsAsync(cluster.request(0, endpoint, null, { timeoutMs: 5000 }), { instanceOf: RequestError });
      t.is(err!.code, 'SPS_ENCODE', endpoint);
      // Said once: the driver's RequestError names the partition and endpoint, the worker's reply does not again.
      t.regex(err!.message, new RegExp(`^Partition 0, endpoint "${endpoint}": reply cannot be encoded: .+`));
      t.notRegex(err!.message, /endpoint "[^"]*": .*endpoint "/i);
      t.deepEqual(await cluster.request(0, 'whoami'), { partition: 0, attempt: 0, pid }, `served after ${endpoint}`);
    }
    const { host, port } = cluster.hosts.get(0)!;
    const base = `http://${host}:${port}/app`;
    for (const route of ['/bigint', '/bigint-async', '/circular', '/circular-async']) {
      const res = await fetch(base + route);
      t.is(res.status, 500, route);
      const body = (await res.json()) as { error: { code: string; message: string } };
      t.is(body.error.code, 'SPS_ENCODE', route);
      t.regex(body.error.message, new RegExp(`^GET /app${route}: reply cannot be encoded as JSON: .+`));
      t.deepEqual(await (await fetch(`${base}/whoami`)).json(), { partition: 0, attempt: 0, pid }, `served after ${route}`);
    }
    t.like(cluster.members[0], { attempt: 0, pid, state: 'serving' });
    await cluster.stop();
    t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 0, count: 3 }]);
  });
});

test.serial('draining waits for a running NATS endpoint and HTTP route: both answer, then stop() gets the result', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: FAULT_SERVER, data: [1, 2, 3], partitions: 1, natsUrl: server.url, log: false }, async (cluster) => {
    const app = await watchStarted(server.url, cluster.id!);
    t.teardown(() => app.close());
    const { host, port } = cluster.hosts.get(0)!;
    const viaNats = cluster.request(0, 'hold', null, { timeoutMs: 60_000 });
    const viaHttp = fetch(`http://${host}:${port}/app/hold`).then((r) => r.json());
    await waitUntil(() => app.started.has('endpoint') && app.started.has('route'), 10_000, 'both handlers running');
    const stopping = cluster.stop();
    // Release only once the partition is draining, so the handlers finish during the drain.
    await waitUntil(() => cluster.members[0]?.state === 'draining', 10_000, 'partition 0 draining');
    await app.release();
    t.deepEqual(await viaNats, { held: 'endpoint', rows: 3 });
    t.deepEqual(await viaHttp, { held: 'route', rows: 3 });
    await stopping;
    t.is(cluster.state, 'stopped');
    t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 0, count: 3 }]);
  });
});

test.serial('draining waits for a running NATS endpoint on a partition without HTTP traffic', async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: FAULT_SERVER, data: [1, 2], partitions: 2, natsUrl: server.url, log: false }, async (cluster) => {
    const app = await watchStarted(server.url, cluster.id!);
    t.teardown(() => app.close());
    const held = cluster.request(1, 'hold', null, { timeoutMs: 60_000 });
    await waitUntil(() => app.started.has('endpoint'), 10_000, 'the endpoint running');
    const stopping = cluster.stop();
    await waitUntil(() => cluster.members[1]?.state === 'draining', 10_000, 'partition 1 draining');
    await app.release();
    t.deepEqual(await held, { held: 'endpoint', rows: 1 });
    await stopping;
    t.deepEqual(cluster.result().get(1), [{ partition: 1, attempt: 0, count: 1 }]);
  });
});

test.serial('a worker leaves with SPS_DRIVER_LOST when the driver falls silent (driver frozen with SIGSTOP)', async (t) => {
  const driver = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), new URL('./fixtures/fault-driver.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let pids: number[] = [];
  // Whatever happens, nothing this test started stays: the driver (stopped or not), then its children.
  t.teardown(async () => {
    if (driver.exitCode === null && driver.signalCode === null) driver.kill('SIGKILL');
    await waitUntil(() => pids.every(hasExited), 10_000, "the driver's children to exit").catch(() => {
      for (const pid of pids) if (!hasExited(pid)) process.kill(pid, 'SIGKILL');
    });
  });
  const line = await firstLine(driver);
  const { nats: natsPid, workers } = JSON.parse(line) as { nats: number; workers: number[] };
  pids = [...workers, natsPid];
  t.is(workers.length, 2);
  for (const pid of pids) t.true(isAlive(pid));
  // Frozen, not dead: the workers' launcher and the nats-server stay, only the heartbeat stops.
  driver.kill('SIGSTOP');
  await waitUntil(() => workers.every(hasExited), 20_000, 'workers to leave on their own');
  t.false(hasExited(natsPid), 'the nats-server is still up: the workers left because of the silence');
  driver.kill('SIGKILL');
  await waitUntil(() => pids.every(hasExited), 10_000, 'nats-server to exit with the driver');
});

test.serial("ctx.request times out after the cluster's requestTimeoutMs, not a fixed 10 s", async (t) => {
  const server = await nats.get();
  await withCluster(t, { server: FAULT_SERVER, data: [1], partitions: 1, requestTimeoutMs: 1000, natsUrl: server.url, log: false }, async (cluster) => {
    const app = await watchStarted(server.url, cluster.id!);
    t.teardown(() => app.close());
    // `hold` runs until released; the inner request must give up long before the outer one.
    t.deepEqual(await cluster.request(0, 'ask_hold', null, { timeoutMs: 8000 }), { code: 'SPS_REQUEST_TIMEOUT' });
    await app.release();
    await cluster.stop();
  });
});

test.serial('ctx.log prints errors with code and stack, and objects with BigInts as JSON', async (t) => {
  const server = await nats.get();
  const lines: string[] = [];
  await withCluster(t, { server: FAULT_SERVER, data: [1], partitions: 1, natsUrl: server.url, log: (line) => lines.push(line) }, async (cluster) => {
    t.is(await cluster.request(0, 'log_error'), 'logged');
    await waitUntil(() => lines.some((l) => l.includes('{"n":"1n","nested":{"a":[1]}}')), 10_000, 'the log line');
    const text = lines.join('\n');
    t.regex(text, /\[sps [^\]]+ p0\/a\d+\] custom \[E_FIRE\] Error: disk on fire\n/);
    t.regex(text, /\n\[sps [^\]]+ p0\/a\d+\] +at .*fault-server\.ts/);
    t.false(text.includes('custom {}'));
  });
});

test('ctx.log formatting: errors, causes, cycles and BigInts never throw', (t) => {
  const loop: Record<string, unknown> = { a: 1 };
  loop.self = loop;
  const shared = { x: 1 };
  t.is(formatLogLine([{ loop, n: 2n }]), '{"loop":{"a":1,"self":"[circular]"},"n":"2n"}');
  t.is(formatLogLine([{ p: shared, q: shared }]), '{"p":{"x":1},"q":{"x":1}}');
  t.is(formatLogLine(['x', 3, undefined, null]), 'x 3 undefined null');
  const err = new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'E_IN' }) });
  const printed = formatLogLine([err]);
  t.regex(printed, /^Error: outer\n\s+at /);
  t.regex(printed, /\nCaused by: \[E_IN\] Error: inner\n/);
  t.is(formatLogLine([{ e: Object.assign(new Error('nested'), { code: 'E_N' }) }]), '{"e":{"name":"Error","message":"nested","code":"E_N"}}');
});

test.serial('a result record that cannot be encoded fails the attempt with SPS_RESULT_WRITE; the retry delivers', async (t) => {
  const server = await nats.get();
  const lines: string[] = [];
  await withCluster(
    t,
    {
      server: FAULT_SERVER,
      data: [1, 2],
      partitions: 1,
      config: { badResultAttempts: [0] },
      natsUrl: server.url,
      log: (line) => lines.push(line),
    },
    async (cluster) => {
      await cluster.stop();
      t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 1, count: 2 }]);
      t.true(
        lines.some((l) =>
          /p0\/a0\] failed: \[SPS_RESULT_WRITE\] a result record cannot be encoded as msgpack: record\[0\]\.huge: \d+ does not fit in 64 bits/.test(l),
        ),
        lines.join('\n'),
      );
    },
  );
});

test.serial('a worker that exits 0 by itself while serving is a failed attempt: retried, and only the retry delivers a result', async (t) => {
  const server = await nats.get();
  const lines: string[] = [];
  await withCluster(t, { server: FAULT_SERVER, data: [1, 2, 3], partitions: 1, natsUrl: server.url, log: (line) => lines.push(line) }, async (cluster) => {
    t.is(await cluster.request(0, 'exit_now'), 'leaving');
    await waitUntil(() => cluster.members[0]?.attempt === 1 && cluster.members[0].state === 'serving', 60_000, 'attempt 1 serving');
    await cluster.stop();
    t.deepEqual(cluster.result().get(0), [{ partition: 0, attempt: 1, count: 3 }]);
    t.true(
      lines.some((l) => /p0\/a0\] .*closed before the end of the result/.test(l)),
      lines.join('\n'),
    );
  });
});

test('writeResults reports a channel it cannot write as SPS_RESULT_WRITE', async (t) => {
  // An fd number far above anything open: no channel behind it.
  await t.throwsAsync(writeResults(987_654, 'msgpack', [{ a: 1 }]), { code: 'SPS_RESULT_WRITE', message: /result channel \(fd 987654\)/ });
});

test.serial('readFrames decodes a 20 MB stream split into 64 KB chunks, without re-copying what it buffered', async (t) => {
  // Frames from a few bytes to several MB, so frames span many chunks and chunks hold many frames.
  const sizes = [1, 10, 1000, 5 * 1024 * 1024, 3, 70_000, 8 * 1024 * 1024, 12, 65_532];
  const bodies: Buffer[] = [];
  let total = 0;
  for (let i = 0; total < 20 * 1024 * 1024; i++) {
    const size = sizes[i % sizes.length]!;
    const body = Buffer.alloc(size, i % 251);
    body.writeUInt8(i % 256, 0);
    bodies.push(body);
    total += 4 + size;
  }
  const stream = Buffer.concat(
    bodies.map((b) => {
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(b.length);
      return Buffer.concat([prefix, b]);
    }),
  );
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += 64 * 1024) chunks.push(stream.subarray(off, off + 64 * 1024));
  // Linear, not quadratic, without timing anything: count the bytes copied while reading.
  let copied = 0;
  const { concat } = Buffer;
  const { copy } = Buffer.prototype;
  Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
    copied += length ?? list.reduce((a, b) => a + b.length, 0);
    return concat(list, length);
  }) as typeof Buffer.concat;
  Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) {
    const n = copy.apply(this, args);
    copied += n;
    return n;
  };
  let n = 0;
  try {
    for await (const body of readFrames(Readable.from(chunks), 'big stream')) {
      t.true(body.equals(bodies[n]!), `frame ${n}`);
      n++;
    }
  } finally {
    Buffer.concat = concat;
    Buffer.prototype.copy = copy;
  }
  t.is(n, bodies.length);
  // Frames that span chunks are copied once; a quadratic reader copies about 50 times the stream.
  t.true(copied <= 2 * stream.length, `${copied} bytes copied to read ${stream.length}`);
  // A frame cut off at the end is still an error.
  const cut = encodeFrame([1, 2, 3], 'msgpack');
  await t.throwsAsync(
    async () => {
      for await (const _ of readFrames(Readable.from([cut.subarray(0, 2)]), 'cut stream'));
    },
    { message: /cut stream: stream ended inside a frame \(2 trailing bytes\)/ },
  );
});
