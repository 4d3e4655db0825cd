import test from 'ava';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { generateTlsMaterial, type TlsMaterial } from '../src/transport/tls-certs.js';
import { findNatsServer } from '../src/transport/nats-server.js';
import { stopProcess } from '../src/process/stop-process.js';
import { tiedCommand } from '../src/process/tied-process.js';
import { inVenv } from '../src/process/executables.js';
import { SparkPartitionServerError } from '../src/errors.js';

/** One TLS nats-server shared by the tests of this file, started in `test.before`. */
interface TlsNats {
  material: TlsMaterial;
  dir: string;
  caFile: string;
  url: string;
  port: number;
  child: ChildProcess;
}
let server: TlsNats | undefined;
const tempDirs: string[] = [];

function privateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sps-tls-test-')); // mkdtemp makes it 0700
  tempDirs.push(dir);
  return dir;
}

function writePrivate(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** Starts nats-server with a TLS-only client port; resolves with its port once it is ready. */
async function startTlsNats(material: TlsMaterial): Promise<TlsNats> {
  const dir = privateDir();
  const certFile = writePrivate(dir, 'server.pem', material.certPem);
  const keyFile = writePrivate(dir, 'server-key.pem', material.keyPem);
  const caFile = writePrivate(dir, 'ca.pem', material.caPem);
  const conf = writePrivate(
    dir,
    'nats.conf',
    `listen: 127.0.0.1:-1\ntls {\n  cert_file: ${JSON.stringify(certFile)}\n  key_file: ${JSON.stringify(keyFile)}\n  timeout: 5\n}\n`,
  );
  // Tied, so the server dies with this test process even if the teardown never runs.
  const tied = tiedCommand(findNatsServer(), ['-c', conf], { signal: 'SIGKILL' });
  const child = spawn(tied.command, tied.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  server = { material, dir, caFile, url: '', port: 0, child }; // registered before waiting, so after.always stops it
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server not ready within 10 s:\n${log}`)), 10_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${signal ?? code}:\n${log}`));
    });
    child.stderr!.setEncoding('utf8');
    const onData = (chunk: string): void => {
      log += chunk;
      const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m && log.includes('Server is ready')) {
        clearTimeout(timer);
        // Detach, or later log lines (e.g. on shutdown) would run this again and strip stopProcess's 'exit' listener.
        child.stderr!.off('data', onData);
        child.removeAllListeners('exit');
        child.stderr!.resume(); // keep draining so the server never blocks on a full pipe
        resolve(Number(m[1]));
      }
    };
    child.stderr!.on('data', onData);
  });
  server.port = port;
  server.url = `nats://127.0.0.1:${port}`;
  return server;
}

test.before(async () => {
  await startTlsNats(await generateTlsMaterial({ ips: ['127.0.0.1'] }));
});

test.after.always(async () => {
  try {
    if (server) await stopProcess(server.child, 5000);
  } finally {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  }
});

function runPython(code: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const python = inVenv('python');
  if (!python) throw new Error('no .venv/bin/python (run npm run setup)');
  return new Promise((resolve) => {
    // execFile kills the child on timeout, so nothing outlives the test.
    execFile(python, ['-c', code, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

// nats-py client: argv = url, CA PEM ('' = default context). Prints OK after a request round trip.
const PY_CLIENT = `
import asyncio, ssl, sys
import nats

async def main(url, ca_pem):
    ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    async def quiet(e):
        pass
    nc = await nats.connect(url, tls=ctx, tls_hostname="127.0.0.1", allow_reconnect=False,
                            max_reconnect_attempts=0, connect_timeout=5, error_cb=quiet)
    async def echo(msg):
        await msg.respond(b"pong:" + msg.data)
    await nc.subscribe("tls.echo", cb=echo)
    reply = await nc.request("tls.echo", b"ping", timeout=5)
    assert reply.data == b"pong:ping", reply.data
    await nc.flush()
    await nc.close()
    print("OK")

asyncio.run(main(sys.argv[1], sys.argv[2]))
`;

test('the certificates carry the names, usages and validity asked for', async (t) => {
  const m = await generateTlsMaterial({ ips: ['10.1.2.3', 'fe80::1'], dnsNames: ['worker-1.example'] });
  const ca = new X509Certificate(m.caPem);
  const cert = new X509Certificate(m.certPem);
  t.true(ca.ca);
  t.false(cert.ca);
  t.true(cert.checkIssued(ca));
  t.true(cert.verify(ca.publicKey));
  t.is(
    cert.subjectAltName,
    'IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.1.2.3, IP Address:FE80:0:0:0:0:0:0:1, DNS:localhost, DNS:worker-1.example',
  );
  t.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']); // Node reports the extended key usage here: serverAuth
  const now = Date.now();
  for (const c of [ca, cert]) {
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    t.true(Math.abs(now - 3600_000 - from) < 60_000, `valid from ${c.validFrom}`);
    t.true(Math.abs(now + 7 * 86400_000 - to) < 60_000, `valid to ${c.validTo}`);
  }
  t.regex(m.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = createPrivateKey(m.keyPem);
  t.is(key.asymmetricKeyType, 'ec');
  t.is(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.true(cert.checkPrivateKey(key));
  // Key usage and basic constraints details are not exposed by Node; ask OpenSSL.
  const dir = privateDir();
  const text = (pem: string): string =>
    execFileSync('openssl', ['x509', '-noout', '-ext', 'basicConstraints,keyUsage', '-in', writePrivate(dir, 'c.pem', pem)], { encoding: 'utf8' });
  t.regex(text(m.caPem), /Basic Constraints: critical\s+CA:TRUE, pathlen:0\s+X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  t.regex(text(m.certPem), /Basic Constraints: critical\s+CA:FALSE\s+X509v3 Key Usage: critical\s+Digital Signature\s*$/);
  // Each run has its own CA.
  t.not(new X509Certificate((await generateTlsMaterial({})).caPem).fingerprint256, ca.fingerprint256);
});

test('bad addresses are refused with SPS_TLS', async (t) => {
  for (const opts of [{ ips: ['not-an-ip'] }, { ips: ['300.1.1.1'] }, { dnsNames: ['bad name'] }, { dnsNames: [''] }]) {
    const err = await t.throwsAsync(generateTlsMaterial(opts), { instanceOf: SparkPartitionServerError });
    t.is((err as SparkPartitionServerError).code, 'SPS_TLS');
  }
});

test('the key and certificate files are private', (t) => {
  for (const name of ['server.pem', 'server-key.pem', 'ca.pem']) t.is(statSync(join(server!.dir, name)).mode & 0o777, 0o600, name);
  t.is(statSync(server!.dir).mode & 0o777, 0o700);
});

for (const how of ['ca', 'caFile'] as const) {
  test(`a nats.js client trusting the run's CA (tls.${how}) does a publish/subscribe round trip`, async (t) => {
    const { url, caFile, material } = server!;
    const nc = await connect({ servers: url, tls: how === 'ca' ? { ca: material.caPem } : { caFile }, timeout: 5000 });
    t.teardown(() => nc.close());
    t.true(nc.info?.tls_required);
    const sub = nc.subscribe('tls.round.trip', { max: 1 });
    nc.publish('tls.round.trip', 'hello over tls');
    for await (const msg of sub) t.is(msg.string(), 'hello over tls');
    t.is(sub.getProcessed(), 1);
  });
}

test('a nats.js client without TLS options is refused', async (t) => {
  const err = await t.throwsAsync(connect({ servers: server!.url, timeout: 5000, reconnect: false }));
  t.log(err?.message);
  t.regex(String(err?.message), /certificate|self.signed|issuer/i);
});

test('a nats.js client trusting a different CA is refused', async (t) => {
  const other = await generateTlsMaterial({ ips: ['127.0.0.1'] });
  const err = await t.throwsAsync(connect({ servers: server!.url, tls: { ca: other.caPem }, timeout: 5000, reconnect: false }));
  t.log(err?.message);
  t.regex(String(err?.message), /certificate|issuer/i);
});

test('nats-py connects with an in-memory CA (cadata) and does a request; the default context is refused', async (t) => {
  const ok = await runPython(PY_CLIENT, [server!.url, server!.material.caPem]);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim(), 'OK');
  const refused = await runPython(PY_CLIENT, [server!.url, '']);
  t.not(refused.code, 0, refused.stdout);
  t.regex(refused.stderr, /CERTIFICATE_VERIFY_FAILED/);
});
