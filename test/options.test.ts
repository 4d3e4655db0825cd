/**
 * Option names are checked at every level: an unknown field of `Cluster`'s options, of
 * `SparkApplication.start`'s, or of any nested option object is refused before anything starts,
 * naming the field by its path and the known field nearest to it. Nothing here starts a process:
 * validation comes first.
 */
import test from 'ava';
import { Cluster, InvalidOptionError, SparkApplication, type ClusterOptions, type SparkApplicationOptions } from '../src/index.js';
import { TEST_SERVER } from './helpers/harness.js';
import { withCluster } from './helpers/with-cluster.js';

const cluster = (options: Record<string, unknown>) => () => new Cluster({ server: TEST_SERVER, ...options } as ClusterOptions);

/** `options` refused as an InvalidOptionError for `option`, with a message matching `message`. */
function refused(t: import('ava').ExecutionContext, make: () => unknown, option: string, message: RegExp): void {
  const err = t.throws(make, { instanceOf: InvalidOptionError });
  t.is(err?.option, option);
  t.regex(err!.message, message);
}

test('an unknown top-level option of a Cluster is refused with the nearest known name', (t) => {
  refused(t, cluster({ partition: 4 }), 'partition', /"partition": is not an option \(did you mean "partitions"\?\)/);
  refused(t, cluster({ dataa: [1, 2] }), 'dataa', /did you mean "data"\?/);
  refused(t, cluster({ requestTimeout: 5 }), 'requestTimeout', /did you mean "requestTimeoutMs"\?/);
  refused(t, cluster({ LOGLEVEL: 'debug' }), 'LOGLEVEL', /did you mean "logLevel"\?/);
  // Nothing near: the known names are listed instead.
  refused(t, cluster({ frobnicate: true }), 'frobnicate', /is not an option \(known: server, data, partitions, .*collectiveTransport, http.*partitionBy.*\)/);
});

test('unknown fields of the nested option objects of a Cluster are refused, named by their path', (t) => {
  refused(t, cluster({ server: { module: TEST_SERVER, exprt: 'x' } }), 'server.exprt', /is not an option of server \(did you mean "server\.export"\?\)/);
  refused(t, cluster({ data: { rang: { end: 3 } } }), 'data.rang', /did you mean "data\.range"\?/);
  refused(t, cluster({ data: { range: { ende: 3 } } }), 'data.range.ende', /did you mean "data\.range\.end"\?/);
  refused(t, cluster({ data: { parquett: '/x' } }), 'data.parquett', /did you mean "data\.parquet"\?/);
  refused(t, cluster({ natsUrl: 'nats://127.0.0.1:1', natsTls: { caFil: '/ca.pem' } }), 'natsTls.caFil', /did you mean "natsTls\.caFile"\?/);
  refused(t, cluster({ tls: { certFile: 'c', keyFile: 'k', caFile: 'a', ca: 'x' } }), 'tls.ca', /is not an option of tls/);
  refused(t, cluster({ master: 'local[2]', source: { sql: 'select 1', option: {} } }), 'source.option', /did you mean "source\.options"\?/);
  refused(t, cluster({ master: 'local[2]', source: { range: { end: 9, stop: 3 } } }), 'source.range.stop', /did you mean "source\.range\.step"\?/);
  // Rows given as an array or an iterable are not option objects: their contents are the user's.
  t.notThrows(cluster({ data: [{ partition: 1 }], partitions: 1 }));
  t.notThrows(cluster({ data: new Set([{ rang: 1 }]), partitions: 1 }));
});

test('an unknown natsAuth field is refused without showing any value', (t) => {
  const secret = 'S3CRET-token-value';
  refused(t, cluster({ natsUrl: 'nats://127.0.0.1:1', natsAuth: { tokn: secret } }), 'natsAuth.tokn', /did you mean "natsAuth\.token"\?/);
  const err = t.throws(cluster({ natsUrl: 'nats://127.0.0.1:1', natsAuth: { tokn: secret } }));
  t.false(err!.message.includes(secret));
});

test('null where an option object belongs is an InvalidOptionError naming it, not a TypeError', (t) => {
  refused(t, cluster({ natsUrl: 'nats://127.0.0.1:1', natsAuth: null }), 'natsAuth', /must be one of/);
  refused(t, cluster({ natsUrl: 'nats://127.0.0.1:1', natsTls: null }), 'natsTls', /must be/);
  refused(t, cluster({ env: null }), 'env', /must map names to string values/);
  refused(t, cluster({ tls: null }), 'tls', /must be true, false/);
  refused(t, cluster({ master: 'local[2]', sparkConf: null }), 'sparkConf', /must map/);
  refused(t, cluster({ master: 'local[2]', source: null }), 'source', /must be an object/);
  refused(t, () => new Cluster(null as never), 'options', /must be an object/);
});

test('SparkApplication.start refuses unknown options and nested fields before starting anything', async (t) => {
  const start = (o: Record<string, unknown>) => SparkApplication.start({ master: 'local[1]', ...o } as SparkApplicationOptions);
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ conff: {} }, 'conff', /did you mean "conf"\?/],
    [{ sparkConf: {} }, 'sparkConf', /is not an option \(known: master, conf,/],
    [{ natsUrl: 'nats://127.0.0.1:1', natsAuth: { seed: 'x' } }, 'natsAuth.seed', /is not an option of natsAuth/],
    [{ natsUrl: 'nats://127.0.0.1:1', natsTls: { caa: 'x' } }, 'natsTls.caa', /did you mean "natsTls\.ca"\?/],
    [{ natsUrl: 'nats://127.0.0.1:1', natsAuth: null }, 'natsAuth', /must be an object/],
    [{ conf: null }, 'conf', /must map/],
  ];
  for (const [options, option, message] of cases) {
    const err = await t.throwsAsync(start(options), { instanceOf: InvalidOptionError });
    t.is(err?.option, option);
    t.regex(err!.message, message);
  }
});

test('the options of Cluster calls are refused when unknown (with the nearest known name) or wrong, named by the call and their path', async (t) => {
  const cluster = new Cluster({ server: TEST_SERVER, partitions: 1, log: false });
  const cases: [Promise<unknown>, string, RegExp][] = [
    [cluster.request(0, 'rows', undefined, { timeOutMs: 5 } as never), 'cluster.request.timeOutMs', /did you mean "cluster\.request\.timeoutMs"\?/],
    [cluster.requestAll('rows', undefined, { signl: undefined } as never), 'cluster.requestAll.signl', /did you mean "cluster\.requestAll\.signal"\?/],
    [cluster.request(0, 'rows', undefined, 'fast' as never), 'cluster.request', /its options must be an object, got string/],
    [cluster.request(0, 'rows', undefined, { timeoutMs: -5 }), 'cluster.request.timeoutMs', /must be a positive number of milliseconds, got -5/],
    [cluster.request(0, 'rows', undefined, { signal: 'stop' } as never), 'cluster.request.signal', /must be an AbortSignal/],
    [
      cluster.requestAll('rows', undefined, { rejoin: { timeotMs: 5 } } as never),
      'cluster.requestAll.rejoin.timeotMs',
      /did you mean "cluster\.requestAll\.rejoin\.timeoutMs"\?/,
    ],
    [cluster.requestAll('rows', undefined, { rejoin: { onRejoin: 1 } } as never), 'cluster.requestAll.rejoin.onRejoin', /must be a function/],
    [cluster.requestAll('rows', undefined, { rejoin: 'yes' } as never), 'cluster.requestAll.rejoin', /must be a boolean or \{ timeoutMs, onRejoin \}/],
    [cluster.start({ abort: undefined } as never), 'cluster.start.abort', /known: signal/],
    [cluster.dashboard({ porrt: 8080 } as never), 'cluster.dashboard.porrt', /did you mean "cluster\.dashboard\.port"\?/],
  ];
  for (const [call, option, message] of cases) {
    const err = await t.throwsAsync(call, { instanceOf: InvalidOptionError });
    t.is(err?.option, option);
    t.regex(err!.message, message);
  }
});

test.serial('the options of the partition context’s calls and collectives are refused when unknown or wrong, named by the call', async (t) => {
  await withCluster(t, { server: new URL('./fixtures/call-options-server.ts', import.meta.url), partitions: 1, log: false }, async (cluster) => {
    const cases: [string, unknown, string, RegExp][] = [
      ['request', { timeout: 5 }, 'ctx.request.timeout', /did you mean "ctx\.request\.timeoutMs"\?/],
      ['requestAll', { Signal: undefined }, 'ctx.requestAll.Signal', /did you mean "ctx\.requestAll\.signal"\?/],
      ['waitForPeers', { timeoutMS: 5 }, 'ctx.waitForPeers.timeoutMS', /did you mean "ctx\.waitForPeers\.timeoutMs"\?/],
      ['request', { timeoutMs: 'soon' }, 'ctx.request.timeoutMs', /must be a positive number of milliseconds, got "soon"/],
      ['barrier', { transprt: 'nats' }, 'ctx.barrier.transprt', /did you mean "ctx\.barrier\.transport"\?/],
      ['allReduce', { inplace: true }, 'ctx.allReduce.inplace', /did you mean "ctx\.allReduce\.inPlace"\?/],
      ['barrier', null, 'ctx.barrier', /its options must be an object, got null/],
    ];
    for (const [call, opts, option, message] of cases) {
      const out = await cluster.request<{ code: string; option: string; message: string }>(0, 'misuse', { call, opts });
      t.is(out.code, 'SPS_INVALID_OPTION', `${call}: ${out.message}`);
      t.is(out.option, option);
      t.regex(out.message, message);
    }
    t.is(await cluster.request(0, 'misuse', { call: 'allReduce', opts: { timeoutMs: 30_000, transport: 'nats' } }), 'accepted', 'known options pass');
  });
});

test('SparkApplication.attach refuses unknown options before starting anything', async (t) => {
  const err = await t.throwsAsync(SparkApplication.attach({ host: () => {}, pid: process.pid, maxFailures: 1, readyTimeout: 5 } as never), {
    instanceOf: InvalidOptionError,
  });
  t.is(err?.option, 'readyTimeout');
  t.regex(err!.message, /did you mean "readyTimeoutMs"\?/);
});

test('natsUrl takes one URL, a comma-separated list or an array, kept as one list; empty entries are refused', (t) => {
  const list = (natsUrl: unknown): string | undefined => new Cluster({ server: TEST_SERVER, natsUrl } as ClusterOptions).natsUrl;
  t.is(list('nats://a:4222'), 'nats://a:4222');
  t.is(list('nats://a:4222, nats://b:4222'), 'nats://a:4222,nats://b:4222');
  t.is(list(['nats://a:4222', 'nats://b:4222,nats://c:4222']), 'nats://a:4222,nats://b:4222,nats://c:4222');
  refused(t, cluster({ natsUrl: [] }), 'natsUrl', /must be a URL, a comma-separated list/);
  refused(t, cluster({ natsUrl: ['nats://a:4222', 7] }), 'natsUrl', /must be a URL/);
  refused(t, cluster({ natsUrl: 'nats://a:4222,,nats://b:4222' }), 'natsUrl', /empty entry/);
  refused(t, cluster({ natsUrl: '' }), 'natsUrl', /empty entry/);
});

test('natsAccount goes with natsUrl and without natsAuth, as { account, signingKeyFile, credentialTtlMs? }', (t) => {
  const account = { account: 'A'.repeat(56), signingKeyFile: '/keys/signing.nk' };
  refused(t, cluster({ natsAccount: account }), 'natsAccount', /applies to a NATS server you run/);
  refused(t, cluster({ natsUrl: 'nats://a:4222', natsAccount: account, natsAuth: { token: 'x' } }), 'natsAccount', /without natsAuth/);
  refused(
    t,
    cluster({ natsUrl: 'nats://a:4222', natsAccount: { ...account, signingKey: 'SA…' } }),
    'natsAccount.signingKey',
    /did you mean "natsAccount\.signingKeyFile"\?/,
  );
  refused(t, cluster({ natsUrl: 'nats://a:4222', natsAccount: { account: 'A' } }), 'natsAccount.signingKeyFile', /is required/);
  refused(t, cluster({ natsUrl: 'nats://a:4222', natsAccount: 'A' }), 'natsAccount', /must be \{ account, signingKeyFile/);
  refused(
    t,
    cluster({ natsUrl: 'nats://a:4222', natsAccount: { ...account, credentialTtlMs: -1 } }),
    'natsAccount.credentialTtlMs',
    /must be an integer from 1/,
  );
  t.notThrows(cluster({ natsUrl: 'nats://a:4222', natsAccount: account }));
});

test('values are checked against the options schema, each named by its path, and a secret is never shown', async (t) => {
  const spark = { master: 'local[2]' };
  refused(t, cluster({ ...spark, source: { sql: 'select 1', table: 't' } }), 'source', /must be an object with exactly one of range, rows/);
  refused(t, cluster({ ...spark, source: { range: { end: 3, step: 0 } } }), 'source.range.step', /must be a safe integer other than 0, got 0/);
  refused(t, cluster({ ...spark, source: { csv: '/d', options: { header: true } } }), 'source.options.header', /must be a string, got true/);
  refused(t, cluster({ data: { range: { end: 'x' } } }), 'data.range.end', /must be a safe integer, got "x"/);
  refused(t, cluster({ env: { A: 1 } }), 'env.A', /must be a string, got 1/);
  refused(t, cluster({ natsUrl: 'nats://a:4222', natsTls: { caFile: 3 } }), 'natsTls.caFile', /must be a file path, got 3/);
  refused(t, cluster({ logLevel: 'loud' }), 'logLevel', /must be "debug", "info", "warn", "error", "silent", got "loud"/);
  refused(t, cluster({ server: undefined }), 'server', /is required/);
  const secret = 'S3CRET-pem-or-token';
  refused(t, cluster({ natsUrl: 'nats://a:4222', natsAuth: { token: 7, user: secret } }), 'natsAuth', /must be one of/);
  const start = (o: Record<string, unknown>) => SparkApplication.start({ ...spark, ...o } as SparkApplicationOptions);
  for (const [options, option, message] of [
    [{ conf: { 'spark.x': 1 } }, 'conf.spark.x', /must be a string, got 1/],
    [{ maxFailures: 0 }, 'maxFailures', /must be an integer from 1 to 100, got 0/],
    [{ natsUrl: 'nats://a:4222', natsTls: { ca: secret, key: 5 } }, 'natsTls.key', /^Invalid option "natsTls\.key": must be a non-empty string$/],
    [{ natsUrl: 'nats://a:4222', natsAuth: { token: secret, pass: secret } }, 'natsAuth', /must be an object/],
  ] as const) {
    const err = await t.throwsAsync(start(options), { instanceOf: InvalidOptionError });
    t.is(err?.option, option);
    t.regex(err!.message, message);
    t.false(err!.message.includes(secret));
  }
});

test('docs/options.md lists every option of the schema, and no other', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const { ClusterOptionsSchema } = await import('../src/driver/options.js');
  const table = (await readFile(new URL('../docs/options.md', import.meta.url), 'utf8')).split('\n## ')[0]!;
  const documented = table
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...line.split('|')[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
  t.deepEqual([...documented].sort(), Object.keys(ClusterOptionsSchema.properties).sort());
});
