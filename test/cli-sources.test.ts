/**
 * `sps` and the API agree: `sps run --parquet` and `--arrow` read files embedded as the `data`
 * option does; the credentials file has one documented format, written by `sps run` and by
 * `cluster.writeCredentials(path, 'client')`, and a hand-made file that is wrong is told what is
 * wrong; a signal before the run served gives 128 + its number.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import { Cluster } from '../src/index.js';
import { parseCredentialsFile } from '../src/driver/credentials-file.js';
import { clusterAddress } from '../src/cli/cluster-access.js';
import { interruptedExitCode } from '../src/cli/run-command.js';
import { clusterOptions, UsageError, type RunFlags } from '../src/cli/run-options.js';
import { TEST_SERVER } from './helpers/harness.js';
import { assertBuiltCliFresh, BUILT_CLI } from './helpers/built-cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sps-cli-sources-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const flags = (more: Partial<RunFlags>): RunFlags => ({ server: 'x.js', workerLogs: false, ...more });

function sps(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BUILT_CLI, ...args], { cwd: root, timeout: 90_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

test('--parquet and --arrow give the embedded file sources of the API; --arrow with --master and --csv without are refused', (t) => {
  t.deepEqual(clusterOptions(flags({ parquet: '/d/p' }), () => {}).data, { parquet: '/d/p' });
  t.deepEqual(clusterOptions(flags({ arrow: '/d/a.arrow' }), () => {}).data, { arrow: '/d/a.arrow' });
  t.deepEqual(clusterOptions(flags({ parquet: '/d/p', master: 'local[2]' }), () => {}).source, { parquet: '/d/p' });
  t.throws(() => clusterOptions(flags({ arrow: '/d/a', master: 'local[2]' }), () => {}), { instanceOf: UsageError, message: /--arrow .*without Spark/ });
  t.throws(() => clusterOptions(flags({ csv: '/d/c' }), () => {}), { instanceOf: UsageError, message: /--csv needs a Spark master.*--parquet and --arrow/ });
});

test('sps run --arrow serves an Arrow IPC file embedded, split evenly over the partitions', async (t) => {
  assertBuiltCliFresh();
  const file = join(dir, 'rows.arrow');
  writeFileSync(file, tableToIPC(new Table({ id: vectorFromArray(Int32Array.from({ length: 10 }, (_, i) => i)) }), 'file'));
  const run = await sps(['run', '--server', fileURLToPath(TEST_SERVER), '--partitions', '2', '--arrow', file, '--for', '0', '--no-worker-logs']);
  t.is(run.code, 0, run.stderr);
  const records = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { partition: number; record: { count: number; sum: number } });
  // The test server counts and sums the `id` of its rows: 0..4 and 5..9.
  t.deepEqual(
    records.map((r) => [r.partition, r.record.count]),
    [
      [0, 5],
      [1, 5],
    ],
  );
});

test('cluster.writeCredentials writes the documented file (mode 0600) that sps status reads', async (t) => {
  assertBuiltCliFresh();
  const cluster = new Cluster({ server: TEST_SERVER, partitions: 2, log: false });
  t.teardown(() => cluster.stop());
  const path = join(dir, 'creds.json');
  t.throws(() => cluster.writeCredentials(path, 'client'), { message: /client credentials exist once start\(\) began/ });
  await cluster.start();
  cluster.writeCredentials(path, 'client');
  t.is(statSync(path).mode & 0o777, 0o600);
  const status = await sps(['status', '--json', '--credentials-file', path]);
  t.is(status.code, 0, status.stderr);
  const view = JSON.parse(status.stdout) as { clusterId: string; members: { partition: number; state: string }[] };
  t.is(view.clusterId, cluster.id!);
  t.deepEqual(
    view.members.map((m) => [m.partition, m.state]),
    [
      [0, 'serving'],
      [1, 'serving'],
    ],
  );
});

test('a hand-made credentials file is told what is wrong with it, naming the field, never a value', (t) => {
  const file = (content: unknown): string => {
    const path = join(dir, `hand-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  const refused = (content: unknown, message: RegExp) =>
    t.throws(() => clusterAddress({ credentialsFile: file(content) }), { instanceOf: UsageError, message });
  refused({ cluster: 'sps-1', url: 'nats://h:1' }, /has an unknown field "cluster" \(did you mean "clusterId"\?\)/);
  refused({ clusterId: 'sps-1', natsUrl: 'nats://h:1' }, /unknown field "natsUrl"/);
  refused({ clusterId: 'sps-1' }, /say where the cluster is: the NATS URL \("url" in the file, or --nats\) is missing/);
  refused({ url: 'nats://h:1', auth: { seed: 'SUSECRET' } }, /unknown field "auth\.seed"/);
  refused('not json', /is not JSON/);
  const e = t.throws(() => clusterAddress({ credentialsFile: file({ clusterId: 'a', url: 'u', auth: { nkeySeed: 5 } }) }));
  t.regex(e!.message, /field "auth" must be an object of strings/);
  // A right one: the fields as written.
  const good = { clusterId: 'sps-1', url: 'nats://h:1', auth: { nkeySeed: 'SUX' }, inboxPrefix: '_INBOX_x' };
  t.deepEqual(parseCredentialsFile(JSON.stringify(good), 'file'), good);
  t.like(clusterAddress({ credentialsFile: file(good) }), { clusterId: 'sps-1', access: { url: 'nats://h:1', inboxPrefix: '_INBOX_x' } });
});

test('Ctrl-C before the run served: sps stops the run and exits 130', async (t) => {
  assertBuiltCliFresh();
  // Partition 0 waits for a file that never comes: the run never serves.
  const config = JSON.stringify({ initGate: { '0': join(dir, 'never') } });
  const args = ['run', '--progress', 'json', '--server', fileURLToPath(TEST_SERVER), '--partitions', '2', '--range', '4', '--config', config];
  const child = spawn(process.execPath, [BUILT_CLI, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      // Partition 1 serves, so the cluster is starting and sps handles signals.
      if (/"event":"member".*"partition":1.*"state":"serving"/.test(stderr)) resolve();
    });
    void exited.then(() => reject(new Error(`sps ended first: ${stderr}`)));
  });
  child.kill('SIGINT');
  t.is(await exited, interruptedExitCode('SIGINT'));
  t.is(interruptedExitCode('SIGINT'), 130);
  t.regex(stderr, /interrupted by SIGINT/);
});
