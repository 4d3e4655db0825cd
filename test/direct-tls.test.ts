// The direct path of collectives on a TLS bus: TLS with both ends pinned to the certificates the
// membership announces. Real workers, real nats-server; the bytes on the wire are read through a
// recording proxy the fixture puts in front of its own direct sockets.
import test, { type ExecutionContext } from 'ava';
import { createConnection, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { Cluster } from '../src/index.js';
import { makeDirectIdentity } from '../src/security/direct-tls.js';

const SERVER = new URL('./fixtures/direct-tls-server.ts', import.meta.url);

type Reply<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };
type Pattern = { wrong: number; digest: string; direct: boolean };

async function start(t: ExecutionContext, tls: boolean, partitions = 2): Promise<Cluster<number>> {
  const cluster = new Cluster<number>({ server: SERVER, data: [1, 2], partitions, log: false, tls });
  t.teardown(() => cluster.stop());
  await cluster.start();
  return cluster;
}

function value<T>(t: ExecutionContext, r: Reply<T> | undefined, what: string): T {
  if (!r?.ok) t.fail(`${what}: ${JSON.stringify(r)}`);
  return (r as { value: T }).value;
}

/** The pattern allReduce on every partition over `transport`; each partition's outcome. */
async function pattern(t: ExecutionContext, cluster: Cluster<number>, transport?: string): Promise<Pattern[]> {
  const replies = await cluster.requestAll<Pattern>('pattern', { transport }, { timeoutMs: 120_000 });
  return [...replies].map(([p, r]) => value(t, r as Reply<Pattern>, `partition ${p} over ${transport ?? 'auto'}`));
}

/** Sends `ticket` on `socket` once it is open (for TLS: the handshake done), and resolves with the application bytes received once the partition closed it. */
function present(socket: Socket, ready: string, ticket: string): Promise<{ closed: true; received: number }> {
  return new Promise((resolve) => {
    let received = 0;
    socket.once(ready, () => socket.write(Buffer.from(ticket, 'hex')));
    socket.on('data', (d: Buffer) => (received += d.length));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ closed: true, received }));
  });
}

test.serial('on a plain bus the direct path is plain TCP: the pattern shows on the wire, and a leaked ticket alone lets a stranger in', async (t) => {
  const cluster = await start(t, false);
  t.true(
    cluster.members.every((m) => m.peerPort && m.peerCert === undefined),
    'no certificate on a plain bus',
  );
  t.is(await cluster.request(0, 'capture'), 1);
  for (const r of await pattern(t, cluster, 'direct')) t.like(r, { wrong: 0, direct: true });
  const seen = (await cluster.request<{ bytes: number; pattern: boolean }>(0, 'recorded'))!;
  t.true(seen.bytes > 2 * 1024 * 1024, `${seen.bytes} bytes went through the proxy`);
  t.true(seen.pattern, 'the vector is readable on the wire');

  // The control of the TLS test's strangers: here a ticket is all it takes.
  const target = cluster.members.find((m) => m.partition === 0)!;
  const ticket = (await cluster.request<string>(1, 'leakTicket', 0))!;
  t.regex(ticket, /^[0-9a-f]{64}$/);
  const first = createConnection({ host: target.host, port: target.peerPort! });
  t.teardown(() => first.destroy());
  await new Promise((resolve) => first.once('connect', resolve));
  first.write(Buffer.from(ticket, 'hex'));
  const replay = await present(createConnection({ host: target.host, port: target.peerPort! }), 'connect', ticket);
  t.deepEqual(replay, { closed: true, received: 0 }, 'the replay is refused');
  t.is((await cluster.request<{ refusedSockets: number }>(0, 'stats'))!.refusedSockets, 1, 'only the replay was refused');
  t.false(first.destroyed, 'the stranger with the ticket was let in');
});

test.serial("on a TLS bus 'auto' sends over the direct sockets, which speak TLS: same results as NATS, nothing readable on the wire", async (t) => {
  const cluster = await start(t, true, 3);
  t.regex(cluster.natsUrl!, /^tls:\/\//);
  const certs = cluster.members.map((m) => m.peerCert);
  t.true(
    certs.every((c) => /^[0-9a-f]{64}$/.test(c ?? '')),
    'each attempt announced a certificate',
  );
  t.is(new Set(certs).size, 3, 'a certificate per attempt');
  t.is(await cluster.request(0, 'capture'), 2);

  const auto = await pattern(t, cluster);
  const nats = await pattern(t, cluster, 'nats');
  for (const [p, r] of auto.entries()) {
    t.like(r, { wrong: 0, direct: true }, `partition ${p}: 'auto' went directly`);
    t.like(nats[p], { wrong: 0, direct: false, digest: r.digest }, `partition ${p}: NATS computed the same`);
  }
  const seen = (await cluster.request<{ bytes: number; pattern: boolean }>(0, 'recorded'))!;
  t.true(seen.bytes > 2 * 1024 * 1024, `${seen.bytes} bytes went through the proxy`);
  t.false(seen.pattern, 'the vector is not readable on the wire');
  const stats = (await cluster.request<{ directBytesSent: number; refusedSockets: number }>(0, 'stats'))!;
  t.true(stats.directBytesSent > 0);
  t.is(stats.refusedSockets, 0);
});

test.serial('on a TLS bus a stranger holding a valid ticket is refused without the member’s certificate', async (t) => {
  const cluster = await start(t, true);
  const target = cluster.members.find((m) => m.partition === 0)!;
  const at = { host: target.host, port: target.peerPort! };
  const leak = async () => (await cluster.request<string>(1, 'leakTicket', 0))!;
  const wrong = await makeDirectIdentity();
  t.not(wrong.fingerprint, cluster.members.find((m) => m.partition === 1)!.peerCert);

  // No certificate, another certificate, and the ticket in the clear: each closed with no byte of data back.
  const noCert = connectTls({ ...at, rejectUnauthorized: false });
  t.deepEqual(await present(noCert, 'secureConnect', await leak()), { closed: true, received: 0 }, 'no client certificate');
  const otherCert = connectTls({ ...at, rejectUnauthorized: false, cert: wrong.certPem, key: wrong.keyPem });
  const shown = new Promise<string | undefined>((resolve) =>
    otherCert.once('secureConnect', () => resolve((otherCert as TLSSocket).getPeerCertificate().fingerprint256)),
  );
  t.deepEqual(await present(otherCert, 'secureConnect', await leak()), { closed: true, received: 0 }, 'a certificate the member did not announce');
  // What the stranger saw of the partition: the certificate it announced.
  t.is((await shown)?.replace(/:/g, '').toLowerCase(), target.peerCert);
  t.deepEqual(await present(createConnection(at), 'connect', await leak()), { closed: true, received: 0 }, 'plain TCP');
  t.is((await cluster.request<{ refusedSockets: number }>(0, 'stats'))!.refusedSockets, 3);

  // The members still reach each other directly.
  for (const r of await pattern(t, cluster, 'direct')) t.like(r, { wrong: 0, direct: true });
});
