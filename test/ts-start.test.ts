import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Cluster, RequestError, ServerModuleError } from '../src/index.js';
import { compileServer, LOADED_ON_FIRST_USE } from '../src/driver/launch/compile-server.js';
import { workerNodeFlags } from '../src/driver/launch/worker-command.js';
import { withCluster } from './helpers/with-cluster.js';

// Every compile of this file goes to a private cache, so the first run of each program is a miss.
const work = await mkdtemp(join(tmpdir(), 'sps-ts-start-'));
process.env.SPS_COMPILE_CACHE = join(work, 'cache');
test.after.always(() => rm(work, { recursive: true, force: true }));

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = new URL('./fixtures/ts-trace-server.ts', import.meta.url);
const HELPER = fileURLToPath(new URL('./fixtures/ts-trace-helper.ts', import.meta.url));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** 1-based line of the first line of `file` that includes `text`. */
async function lineOf(file: string, text: string): Promise<number> {
  const i = (await readFile(file, 'utf8')).split('\n').findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`${text} not in ${file}`);
  return i + 1;
}

test('a TypeScript server runs compiled on plain Node, and its stack traces name the .ts files and lines', async (t) => {
  await withCluster(t, { server: SERVER, data: [1, 2], partitions: 2, log: false }, async (cluster) => {
    const rt = await cluster.request<{ execArgv: string[]; entry: string; module: string; tsx: boolean }>(0, 'runtime');
    t.false(rt.tsx, `worker flags: ${rt.execArgv.join(' ')}`);
    // No loader: only the flags every worker gets.
    t.deepEqual(rt.execArgv, workerNodeFlags());
    // From the library's sources, the worker entry is compiled along with the server.
    t.true(rt.entry.startsWith(join(work, 'cache')) && rt.entry.endsWith('sps-worker.mjs'), rt.entry);
    // import.meta.url still names the source module, so files next to it are found.
    t.is(rt.module, SERVER.href);

    const stack = await cluster.request<string>(1, 'stack');
    const throwLine = await lineOf(HELPER, 'throw new Error(');
    const callLine = await lineOf(fileURLToPath(SERVER), "failDeep('stack')");
    t.regex(stack, new RegExp(`^Error: failed on purpose: stack\\n\\s+at failDeep \\((file://)?${escape(HELPER)}:${throwLine}:\\d+\\)`), stack);
    t.regex(stack, new RegExp(`\\((file://)?${escape(fileURLToPath(SERVER))}:${callLine}:\\d+\\)`), stack);

    const err = await t.throwsAsync(cluster.request(0, 'boom'), { instanceOf: RequestError });
    t.regex(err.message, /failed on purpose: boom/);
    await cluster.stop();
  });
});

test('compiled programs are cached by content: unchanged sources reuse one, an edited import makes another', async (t) => {
  // Inside the project, where its packages resolve.
  await mkdir(join(ROOT, '.sps-tmp'), { recursive: true });
  const dir = await mkdtemp(join(ROOT, '.sps-tmp', 'ts-start-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = join(dir, 'server.ts');
  const helper = join(dir, 'helper.ts');
  await writeFile(
    server,
    "import { setup } from 'xstate';\nimport { value } from './helper.js';\nexport const answer = (): number => value;\nexport const pkg = typeof setup;\n",
  );
  await writeFile(helper, 'export const value: number = 1;\n');

  const first = await compileServer(server);
  t.deepEqual(first.files.filter((f) => !f.includes('/')).sort(), ['server.mjs', 'server.mjs.map']);
  const js = await readFile(join(first.dir, 'server.mjs'), 'utf8');
  // Packages stay outside, imported by absolute URL so the program runs from any folder.
  t.regex(js, /from "file:\/\/\/[^"]*\/node_modules\/xstate\/[^"]+"/);
  const map = JSON.parse(await readFile(join(first.dir, 'server.mjs.map'), 'utf8')) as { sources: string[] };
  t.true(map.sources.includes(pathToFileURL(helper).href), map.sources.join(', '));
  t.is(((await import(pathToFileURL(join(first.dir, 'server.mjs')).href)) as { answer: () => number }).answer(), 1);

  const built = (await stat(join(first.dir, 'server.mjs'))).mtimeMs;
  const again = await compileServer(server);
  t.is(again.id, first.id);
  t.is((await stat(join(again.dir, 'server.mjs'))).mtimeMs, built);

  await writeFile(helper, 'export const value: number = 2;\n');
  const edited = await compileServer(server);
  t.not(edited.id, first.id);
  t.is(((await import(pathToFileURL(join(edited.dir, 'server.mjs')).href)) as { answer: () => number }).answer(), 2);
});

test("a program's folder that lacks a file its cache entry lists is made again: every program returned holds each file it names", async (t) => {
  const server = fileURLToPath(SERVER);
  const first = await compileServer(server);
  const chunk = first.files.find((f) => f.startsWith('chunks/') && f.endsWith('.map'));
  t.truthy(chunk, first.files.join(', '));
  await rm(join(first.dir, chunk!));
  const again = await compileServer(server);
  t.is(again.id, first.id, 'the same sources make the same files');
  const missing = again.files.filter((f) => !existsSync(join(again.dir, f)));
  t.deepEqual(missing, []);
});

test('a TypeScript server that does not compile fails start() with ServerModuleError naming the file and line', async (t) => {
  const bad = join(work, 'bad-server.ts');
  await writeFile(bad, 'export default {\n  oops: (x: number => x,\n};\n');
  const cluster = new Cluster({ server: bad, partitions: 1, log: false });
  t.teardown(() => cluster.stop());
  const err = await t.throwsAsync(cluster.start(), { instanceOf: ServerModuleError });
  t.is(err.code, 'SPS_SERVER_MODULE');
  t.regex(err.message, new RegExp(`${escape(bad)}": does not compile: ${escape(bad)}:2:\\d+: `));
});

test('a compile cache folder that others may write to is refused', async (t) => {
  const open = join(work, 'open-cache');
  await mkdir(open, { recursive: true });
  await chmod(open, 0o777);
  const err = await t.throwsAsync(compileServer(fileURLToPath(SERVER), {}, open), { instanceOf: ServerModuleError });
  t.regex(err.message, /others may write to it/);
});

test('files of the compiled library are imported by URL, not copied into the program', async (t) => {
  await mkdir(join(ROOT, '.sps-tmp'), { recursive: true });
  const dir = await mkdtemp(join(ROOT, '.sps-tmp', 'ts-lib-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'lib'));
  await writeFile(join(dir, 'lib', 'index.js'), 'export const brand = Symbol.for("lib");\n');
  await writeFile(join(dir, 'own.ts'), 'export const own: number = 7;\n');
  await writeFile(join(dir, 'server.ts'), "import { brand } from './lib/index.js';\nimport { own } from './own.js';\nexport const both = [brand, own];\n");
  const program = await compileServer(join(dir, 'server.ts'), { dir: join(dir, 'lib') });
  const js = await readFile(join(program.dir, program.server), 'utf8');
  t.true(js.includes(`from "${pathToFileURL(join(dir, 'lib', 'index.js')).href}"`), js);
  t.false(js.includes('Symbol.for'));
  t.true(js.includes('own = 7'), js);
});

test('a changed tsconfig.json next to the server makes a new program', async (t) => {
  await mkdir(join(ROOT, '.sps-tmp'), { recursive: true });
  const dir = await mkdtemp(join(ROOT, '.sps-tmp', 'ts-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'server.ts'), 'export class Box {\n  value = 1;\n}\n');
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { useDefineForClassFields: true } }));
  const first = await compileServer(join(dir, 'server.ts'));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { useDefineForClassFields: false } }));
  const second = await compileServer(join(dir, 'server.ts'));
  t.not(second.id, first.id);
  t.not(await readFile(join(second.dir, second.server), 'utf8'), await readFile(join(first.dir, first.server), 'utf8'));
});

test('partitions as threads run one inlined program: the library and its packages compiled in, stack traces still naming the .ts lines', async (t) => {
  await withCluster(t, { server: SERVER, data: [1, 2], partitions: 2, isolation: 'thread', log: false }, async (cluster) => {
    const rt = await cluster.request<{ execArgv: string[]; entry: string; module: string; tsx: boolean }>(0, 'runtime');
    t.true(rt.entry.startsWith(join(work, 'cache')) && rt.entry.endsWith('sps-worker.mjs'), rt.entry);
    t.is(rt.module, SERVER.href);
    const stack = await cluster.request<string>(1, 'stack');
    const throwLine = await lineOf(HELPER, 'throw new Error(');
    t.regex(stack, new RegExp(`\\n\\s+at failDeep \\((file://)?${escape(HELPER)}:${throwLine}:\\d+\\)`), stack);

    // What the program still loads by path: builtins aside, only package files bound to their
    // folder and packages loaded on first use; never the library's own files or its eager packages.
    const dir = join(rt.entry, '..');
    const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.mjs'));
    const outside = new Set<string>();
    for (const f of files) {
      const js = await readFile(join(dir, f), 'utf8');
      for (const m of js.matchAll(/(?:from |import\(|require\()"((?:file:\/\/)?\/[^"]+)"/g)) outside.add(m[1]!.replace(/^file:\/\//, ''));
    }
    t.true(outside.size > 0);
    for (const path of outside) t.regex(path, /\/node_modules\//, path);
    for (const eager of ['xstate', '@nats-io/nats-core', '@nats-io/transport-node', 'msgpackr/pack']) {
      t.false(
        [...outside].some((p) => p.includes(`/node_modules/${eager}`)),
        `${eager} is compiled in`,
      );
    }
    await cluster.stop();
  });
});

test('every package the library imports only on first use stays outside inlined programs (one instance shared with a server that imports it)', async (t) => {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else if (e.name.endsWith('.ts')) files.push(join(dir, e.name));
    }
  };
  await walk(join(ROOT, 'src'));
  const source = (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
  const name = (spec: string): string =>
    spec
      .split('/')
      .slice(0, spec.startsWith('@') ? 2 : 1)
      .join('/');
  const dynamic = new Set([...source.matchAll(/import\('([^.'][^']*)'\)/g)].map((m) => name(m[1]!)));
  // msgpackr's full entry (its native extractor) is the one package imported both ways: its encoder
  // (msgpackr/pack) is compiled in, the native part loads on first use outside, by import() alone.
  const onFirstUseOnly = [...dynamic].filter((p) => p !== 'msgpackr').sort();
  t.true(onFirstUseOnly.includes('apache-arrow'), onFirstUseOnly.join(', '));
  t.deepEqual(onFirstUseOnly, [...LOADED_ON_FIRST_USE].sort());
});
