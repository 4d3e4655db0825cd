// The suite's own build: every TypeScript file the tests load (src, test, examples, benchmarks,
// scripts) transformed once by esbuild into .cache/test-build/, mirroring the repository, so that
// ava's processes run JavaScript instead of registering tsx in each one (tsx's loader thread took
// most of a test process's start). ava.config.js runs it before every run; @ava/typescript maps
// test/x.test.ts to .cache/test-build/test/x.test.js, so test paths stay the sources'.
//
// What tsx gave the same code is kept: `import.meta.url` (and .filename, .dirname) is the source
// file's, so every path a test or the library builds from it names the sources (fixtures, the
// worker entry, the runner) exactly as before; the package's own name resolves to src/ (tsconfig's
// paths); stack traces map to the .ts lines (inline source maps, ava's --enable-source-maps).
// Only changed files are transformed again, and outputs whose source is gone are removed.
//
//   node scripts/build-tests.mjs
import { build } from 'esbuild';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where the mirror goes (ignored by git, as all of .cache). */
export const TEST_BUILD = '.cache/test-build';
const FOLDERS = ['src', 'test', 'examples', 'benchmarks', 'scripts'];
const TS = /\.(c|m)?ts$/;
/** Files the tests import beside the TypeScript ones, linked into the mirror so relative imports find them. */
const LINKED = /\.(mjs|cjs|js|json)$/;
/** The package's own name (and its `/server` entry), which tsconfig's `paths` map to src/ for tsx. */
const SELF = /^spark-partition-server(\/server)?$/;

function* walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name === '__pycache__' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile() || e.isSymbolicLink()) yield p;
  }
}

function outputName(rel) {
  return rel
    .replace(/\.ts$/, '.js')
    .replace(/\.mts$/, '.mjs')
    .replace(/\.cts$/, '.cjs');
}

function mtime(path) {
  try {
    return lstatSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * Brings the mirror up to date with the sources; returns how many files were transformed.
 * @param {string} [root] the repository (this script's parent by default)
 */
export async function buildTests(root = ROOT) {
  const out = join(root, TEST_BUILD);
  const tsconfigRaw = readFileSync(join(root, 'tsconfig.json'), 'utf8');
  // A change of this script or of tsconfig.json transforms everything again.
  const since = Math.max(statSync(fileURLToPath(import.meta.url)).mtimeMs, statSync(join(root, 'tsconfig.json')).mtimeMs);
  const expected = new Set();
  const jobs = [];
  for (const folder of FOLDERS) {
    for (const file of walk(join(root, folder))) {
      const rel = relative(root, file);
      if (TS.test(file) && !file.endsWith('.d.ts')) {
        const dest = join(out, outputName(rel));
        expected.add(dest);
        const built = mtime(dest);
        if (built >= since && built >= statSync(file).mtimeMs) continue;
        jobs.push(transformOne(file, dest, join(out, 'src'), tsconfigRaw));
      } else if (LINKED.test(file)) {
        const dest = join(out, rel);
        expected.add(dest);
        if (mtime(dest) >= 0) continue;
        mkdirSync(dirname(dest), { recursive: true });
        symlinkSync(file, dest);
      }
    }
  }
  await Promise.all(jobs);
  for (const file of walk(out)) if (!expected.has(file)) rmSync(file);
  return jobs.length;
}

/**
 * One file, as esbuild's transform would give it, but through `build` so that its imports are
 * seen as imports: each stays as written (external), but for the package's own name, which is
 * pointed at the mirror's src/ (a string that merely contains the name is left alone).
 */
async function transformOne(file, dest, srcOut, tsconfigRaw) {
  let toSrc = relative(dirname(dest), srcOut).split(sep).join('/');
  if (!toSrc.startsWith('.')) toSrc = `./${toSrc}`;
  await build({
    entryPoints: [file],
    outfile: dest,
    bundle: true,
    write: true,
    logLevel: 'error',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    tsconfigRaw,
    define: {
      'import.meta.url': JSON.stringify(pathToFileURL(file).href),
      'import.meta.filename': JSON.stringify(file),
      'import.meta.dirname': JSON.stringify(dirname(file)),
    },
    plugins: [
      {
        name: 'imports-as-written',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (args) => {
            if (args.kind === 'entry-point') return undefined;
            const self = SELF.exec(args.path);
            return { path: self ? `${toSrc}/${self[1] ? 'server' : 'index'}.js` : args.path, external: true };
          });
        },
      },
    ],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const n = await buildTests();
  console.log(`build-tests: ${n} files transformed in ${(performance.now() - t0).toFixed(0)} ms`);
}
