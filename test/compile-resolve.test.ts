/**
 * The compiler answers most relative imports of a worker program itself instead of asking esbuild
 * (one round trip each). Every answer it gives must be esbuild's: the same file, and the same say
 * on side effects (which decides what the program leaves out).
 */
import test from 'ava';
import * as esbuild from 'esbuild';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOADED_ON_FIRST_USE } from '../src/driver/launch/compile-server.js';
import { RelativeResolver } from '../src/driver/launch/relative-resolve.js';

const file = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

interface Tally {
  answered: number;
  left: number;
  wrong: string[];
}

/** Bundles `entries` as an inlined program is bundled, checking the resolver on every relative import. */
async function check(entries: Record<string, string>): Promise<Tally> {
  const tally: Tally = { answered: 0, left: 0, wrong: [] };
  const again = Symbol('resolving');
  const resolver = new RelativeResolver();
  await esbuild.build({
    entryPoints: entries,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    conditions: ['node'],
    mainFields: ['main'],
    outdir: 'out',
    write: false,
    logLevel: 'silent',
    external: [...LOADED_ON_FIRST_USE, '*.node'],
    plugins: [
      {
        name: 'compare',
        setup(build) {
          build.onResolve({ filter: /^\.\.?\// }, async (args) => {
            if (args.pluginData === again) return undefined;
            const mine = resolver.resolve(args.path, args.resolveDir, args.importer);
            const theirs = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: again });
            if (mine === undefined) tally.left++;
            else {
              tally.answered++;
              if (mine.path !== theirs.path || (mine.sideEffects !== false) !== (theirs.sideEffects !== false))
                tally.wrong.push(`${args.path} from ${args.importer}: ${mine.path} (${mine.sideEffects}) ≠ ${theirs.path} (${theirs.sideEffects})`);
            }
            return { path: theirs.path, sideEffects: theirs.sideEffects };
          });
        },
      },
    ],
  });
  return tally;
}

test('relative imports answered without esbuild are answered as esbuild does: the library from its sources, its packages (a sideEffects list among them)', async (t) => {
  const tally = await check({ server: file('./fixtures/collective-server.ts'), worker: file('../src/worker/worker.ts'), driver: file('../src/index.ts') });
  t.deepEqual(tally.wrong, []);
  // Nearly all of them: the library's files and every package's own.
  t.true(tally.answered > 1000 && tally.left < tally.answered / 20, JSON.stringify({ ...tally, wrong: tally.wrong.length }));
});

test('…and from the compiled library, and for files that are not there, folders, and package patterns, esbuild is asked', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sps-resolve-'));
  try {
    // A package with a sideEffects pattern, a folder import, and a JavaScript file importing `.ts`-less names.
    const pkg = join(dir, 'node_modules/patterned');
    await mkdir(join(pkg, 'lib'), { recursive: true });
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'patterned', main: 'index.js', sideEffects: ['./lib/*.js'] }));
    await writeFile(join(pkg, 'index.js'), "export { a } from './lib/a.js';\nexport { b } from './lib';\n");
    await writeFile(join(pkg, 'lib/a.js'), 'export const a = 1;\n');
    await writeFile(join(pkg, 'lib/index.js'), 'export const b = 2;\n');
    await writeFile(join(dir, 'main.js'), "import { a, b } from 'patterned';\nimport { c } from './c';\nconsole.log(a, b, c);\n");
    await writeFile(join(dir, 'c.js'), 'export const c = 3;\n');
    const resolver = new RelativeResolver();
    t.is(resolver.resolve('./lib/a.js', pkg, join(pkg, 'index.js')), undefined, 'a sideEffects pattern is esbuild’s to match');
    t.is(resolver.resolve('./lib', pkg, join(pkg, 'index.js')), undefined, 'a folder is esbuild’s to resolve');
    t.is(resolver.resolve('./missing.js', dir, join(dir, 'main.js')), undefined);
    t.deepEqual(resolver.resolve('./c', dir, join(dir, 'main.js')), { path: join(dir, 'c.js') });
    const own = await check({ main: join(dir, 'main.js') });
    t.deepEqual(own.wrong, []);
    const compiled = await check({ worker: file('../dist/src/worker/worker.js') });
    t.deepEqual(compiled.wrong, []);
    t.true(compiled.answered > 500, JSON.stringify({ ...compiled, wrong: compiled.wrong.length }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
