import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
      join(root, 'dist/src/cli.js'),
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
  t.true(runtime.entry.endsWith(join('dist', 'src', 'runtime', 'worker.js')));
  const { host, port } = cluster.hosts.get(0)!;
  t.is(await (await fetch(`http://${host}:${port}/app/hello`)).text(), 'hello from compiled JS');
});

test('a TypeScript server on the compiled library is compiled once by the driver; its workers run the library from dist/ without tsx', async (t) => {
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
  t.deepEqual(runtime.execArgv, []);
  t.true(runtime.entry.endsWith(join('dist', 'src', 'runtime', 'worker.js')), runtime.entry);
  t.is(runtime.greeting, 'hello p');
  t.regex(await cluster.request<string>(0, 'where'), new RegExp(`${join(dir, 'server.ts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+`));
});
