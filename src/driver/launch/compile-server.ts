/**
 * Compiling a TypeScript server module for the workers. The driver turns the user's module, and
 * everything it imports by a relative path, into JavaScript with esbuild once per run, so every
 * worker starts on plain Node instead of transpiling the same sources again in each process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Loader, Plugin } from 'esbuild';
import { ServerModuleError } from '../../errors.js';
import { RelativeResolver } from './relative-resolve.js';

/** Bump when the layout of a compiled program, or what goes into it, changes, so older cache entries are not reused. */
const LAYOUT = 2;

/** Entry names in a compiled program's folder. */
const SERVER_ENTRY = 'server';
const WORKER_ENTRY = 'sps-worker';

/** A compiled program: a folder of ES modules (with source maps) named by the hash of its inputs. */
export interface CompiledProgram {
  /** Hash of every input's content (and of the compiler and its settings); the folder's name. */
  id: string;
  /** The folder holding the files. */
  dir: string;
  /** Every file of the program, relative to `dir` (entries, shared chunks, source maps). */
  files: string[];
  /** The user's server module, relative to `dir`. */
  server: string;
  /** The worker entry, relative to `dir`, when the library itself was compiled along. */
  worker?: string;
}

/** What a cache entry remembers: the program it made and the inputs it was made from. */
interface Manifest {
  id: string;
  files: string[];
  /** Input file → sha256 of its content. */
  inputs: Record<string, string>;
  /** Files of packages the program imports by absolute URL; they must still be there. */
  externals: string[];
}

/**
 * Where compiled programs are kept: `$SPS_COMPILE_CACHE`, else `sps-compiled-<uid>` in the OS
 * temporary folder. Entries are named by content hash, so the folder can be deleted at any time.
 */
export function compileCacheDir(): string {
  return process.env.SPS_COMPILE_CACHE || join(tmpdir(), `sps-compiled-${process.getuid?.() ?? 'user'}`);
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

const LOADERS: Record<string, Loader> = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx' };

/** What Node loads by itself from a package: left to Node, imported by its absolute URL. */
const NODE_LOADS = /\.(c|m)?js$|\.json$|\.node$/;

/**
 * A package file that finds things next to itself at run time (its folder, a native binary, a file
 * named by a computed `require` call, not a method of that name): it only works from where it is,
 * so it is never bundled.
 */
const LOCATION_BOUND = /\b__(dirname|filename)\b|\brequire\s*\(\s*[^'"`\s)][^)]*\)(?!\s*\{)/;

/** The library's own folder (its sources, or its compiled copy): its files are never a package's. */
const LIBRARY_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Whether a file (or a folder, ending in a separator) is part of an installed package other than the library. */
function inPackage(path: string): boolean {
  const rest = path.startsWith(LIBRARY_ROOT) ? path.slice(LIBRARY_ROOT.length - 1) : path;
  return rest.includes(`${sep}node_modules${sep}`);
}

/**
 * Packages the library imports only on first use (`import()`): they stay outside an inlined
 * program also where a server module imports them statically, so the library and the server share
 * one instance of each (an Arrow record batch the library hands over is the server’s own class).
 * @internal
 */
export const LOADED_ON_FIRST_USE: ReadonlySet<string> = new Set(['apache-arrow', '@nats-io/jetstream', 'hdr-histogram-js', 'parquet-wasm', 'ws', 'esbuild']);

/** The name of the package `path` belongs to (its last `node_modules` folder), or undefined. */
function packageOf(path: string): string | undefined {
  const parts = path.split(sep);
  const at = parts.lastIndexOf('node_modules');
  if (at < 0 || at + 1 >= parts.length) return undefined;
  return parts[at + 1]!.startsWith('@') ? `${parts[at + 1]}/${parts[at + 2]}` : parts[at + 1];
}

/** Whether a package file must stay where it is (see {@link LOCATION_BOUND}); read once per build. */
function locationBound(seen: Map<string, Promise<boolean>>, file: string): Promise<boolean> {
  let bound = seen.get(file);
  if (!bound) {
    bound = /\.(c|m)?js$/.test(file)
      ? readFile(file, 'utf8').then(
          (text) => LOCATION_BOUND.test(text),
          () => true,
        )
      : Promise.resolve(!file.endsWith('.json'));
    seen.set(file, bound);
  }
  return bound;
}

/**
 * Packages stay outside the program. Each is imported by the absolute URL of the file its importer
 * resolves to, so the program works from any folder (the cache, or an executor's own folder), and
 * a package imported by the library and by the user's module is the same module instance. A
 * package that resolves to TypeScript (a workspace package, a path alias) is compiled in. So are
 * relative imports, except files of the compiled library (`libraryDir`), which the worker has
 * loaded already: one copy of the library per process.
 *
 * With `inline`, the library and the packages are compiled in as well, so a partition thread loads
 * a few files instead of hundreds (each thread loads its own copy of every module): only package
 * files bound to their location, and packages imported on first use, stay outside.
 */
function externalPackages(externals: Set<string>, libraryDir: string | undefined, inline = false): Plugin {
  const again = Symbol('resolving');
  const bound = new Map<string, Promise<boolean>>();
  const resolver = new RelativeResolver();
  return {
    name: 'sps-external-packages',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === again || args.kind === 'entry-point') return undefined;
        const local = args.path.startsWith('.') || isAbsolute(args.path) || args.path.startsWith('file:');
        if (local && libraryDir === undefined && !inline) return undefined;
        if (!local && isBuiltin(args.path)) return { path: args.path, external: true };
        const r =
          resolver.resolve(args.path, args.resolveDir, args.importer) ??
          (await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: again }));
        if ('errors' in r && r.errors.length > 0) return { errors: r.errors };
        // The user's and the library's own files are always compiled in (`import.meta` is rewritten for them).
        // A package imported on first use stays outside: it is loaded only when used, and a chunk
        // made of a CommonJS package would lose the named exports Node gives it.
        const lazy = args.kind === 'dynamic-import' || LOADED_ON_FIRST_USE.has(packageOf(r.path) ?? '');
        if (inline && !r.external && (!inPackage(r.path) || (!lazy && !(await locationBound(bound, r.path))))) {
          // The library's modules only declare: one the program does not use (the driver's side of
          // its index, for a server) is left out.
          return { path: r.path, sideEffects: r.path.startsWith(LIBRARY_ROOT) && !inPackage(r.path) ? false : r.sideEffects };
        }
        const ofLibrary = libraryDir !== undefined && r.path.startsWith(libraryDir + sep);
        if (r.external || !NODE_LOADS.test(r.path) || (local && !ofLibrary && !inline)) return { path: r.path, external: r.external };
        externals.add(r.path);
        // A `require` takes a path, not a URL (the program defines `require`: see PROGRAM_REQUIRE).
        const required = args.kind === 'require-call' || args.kind === 'require-resolve';
        return { path: required ? r.path : pathToFileURL(r.path).href, external: true };
      });
    },
  };
}

/**
 * Each file of an inlined program defines `require`, for the CommonJS packages compiled in: their
 * own `require` calls of what stays outside (builtins, location-bound files).
 */
// Its `import.meta.url` is spelled in parts: this file is compiled into inlined programs too, where
// sourceLocation would rewrite it.
const PROGRAM_REQUIRE = `import { createRequire as __spsCreateRequire } from 'node:module'; const require = __spsCreateRequire(${['import', 'meta', 'url'].join('.')});`;

/**
 * `import.meta.url`, `.filename` and `.dirname` keep meaning the source file, not the compiled
 * program's folder: modules find files next to themselves (and the library its native HTTP binary).
 */
function sourceLocation(): Plugin {
  return {
    name: 'sps-source-location',
    setup(build) {
      build.onLoad({ filter: /\.(c|m)?(j|t)sx?$/ }, async (args) => {
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('import.meta')) return undefined;
        const contents = text
          .replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href))
          .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(args.path))
          .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dirname(args.path)));
        return { contents, loader: LOADERS[extname(args.path)] ?? 'ts', resolveDir: dirname(args.path) };
      });
    },
  };
}

/** The tsconfig.json esbuild applies to `file`: the nearest one in its folder or above. */
function nearestTsconfig(file: string): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'tsconfig.json'))) return join(dir, 'tsconfig.json');
    if (dirname(dir) === dir) return undefined;
  }
}

/** Hashes of the files, in the same order; `undefined` for a file that is gone. */
async function hashFiles(files: string[]): Promise<(string | undefined)[]> {
  return Promise.all(files.map((f) => readFile(f).then(sha256, () => undefined)));
}

/** The cached program for these inputs, if every input still has the content it was made from. */
async function cached(root: string, key: string): Promise<Manifest | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(root, 'entries', `${key}.json`), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  // Its folder must hold every file it lists (a folder someone emptied in part is made again).
  const dir = join(root, manifest.id);
  if (!manifest.files.every((f) => existsSync(join(dir, f))) || !manifest.externals.every((f) => existsSync(f))) return undefined;
  const paths = Object.keys(manifest.inputs);
  const now = await hashFiles(paths);
  return paths.every((p, i) => now[i] === manifest.inputs[p]) ? manifest : undefined;
}

/**
 * Creates the cache folder, private to this user; refuses one that another user owns or may
 * write to, since workers run what is in it.
 */
async function ownFolder(dir: string, serverFile: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = await stat(dir);
  const uid = process.getuid?.();
  if ((uid !== undefined && s.uid !== uid) || (s.mode & 0o022) !== 0) {
    throw new ServerModuleError(
      serverFile,
      `cannot be compiled into ${dir}: the folder belongs to another user or others may write to it (set SPS_COMPILE_CACHE)`,
    );
  }
}

/** Writes `text` to `file` through a temporary name, so readers see all of it or nothing. */
async function writeAtomically(file: string, text: string | Uint8Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** How the library meets the compiled server. */
export interface LibraryLink {
  /** The library's worker entry, compiled along when the library runs from its TypeScript sources. */
  worker?: string;
  /** The compiled library's folder: its files are imported by URL, never copied in. */
  dir?: string;
  /**
   * Compile the library and its packages in too (with `worker`, ignoring `dir`): one program of a
   * few files, which each partition thread loads in a fraction of the time its modules take one by one.
   */
  inline?: boolean;
}

/**
 * Compiles `serverFile` (a TypeScript or JavaScript module) and its relative imports into one ES
 * module program with source maps, or reuses the cached one when no input changed. With
 * `library.worker`, the worker is compiled along and the library is shared by both entries as one
 * chunk. `cacheDir` defaults to {@link compileCacheDir}.
 *
 * @throws ServerModuleError naming the module and esbuild's message (file, line) when it does not compile.
 */
export async function compileServer(serverFile: string, library: LibraryLink = {}, cacheDir = compileCacheDir()): Promise<CompiledProgram> {
  const esbuild = await import('esbuild');
  const root = cacheDir;
  const workerFile = library.worker;
  const entries: Record<string, string> = { [SERVER_ENTRY]: resolve(serverFile), ...(workerFile ? { [WORKER_ENTRY]: resolve(workerFile) } : {}) };
  const inline = library.inline === true;
  const libraryDir = inline ? undefined : library.dir;
  const key = sha256(JSON.stringify({ LAYOUT, esbuild: esbuild.version, node: process.version, entries, library: libraryDir, inline }));
  const program = (m: Manifest): CompiledProgram => ({
    id: m.id,
    dir: join(root, m.id),
    files: m.files,
    server: `${SERVER_ENTRY}.mjs`,
    ...(workerFile ? { worker: `${WORKER_ENTRY}.mjs` } : {}),
  });
  await ownFolder(root, serverFile);
  const hit = await cached(root, key);
  if (hit) return program(hit);

  const staging = join(root, `staging-${randomBytes(8).toString('hex')}`);
  const externals = new Set<string>();
  let result;
  try {
    result = await esbuild.build({
      entryPoints: entries,
      outdir: staging,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outExtension: { '.js': '.mjs' },
      entryNames: '[name]',
      chunkNames: 'chunks/[name]-[hash]',
      // Node's own resolution: its conditions and `main`, not bundlers' `module`.
      conditions: ['node'],
      mainFields: ['main'],
      keepNames: true,
      sourcemap: 'linked',
      sourcesContent: false,
      metafile: true,
      write: false,
      logLevel: 'silent',
      plugins: [externalPackages(externals, libraryDir, inline), sourceLocation()],
      ...(inline ? { banner: { js: PROGRAM_REQUIRE } } : {}),
    });
  } catch (err) {
    const failure = err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] };
    const first = failure.errors?.[0];
    const where = first?.location ? `${resolve(first.location.file)}:${first.location.line}:${first.location.column}: ` : '';
    throw new ServerModuleError(serverFile, `does not compile: ${where}${first?.text ?? (err as Error).message}`);
  }
  // esbuild also reads the nearest tsconfig.json (decorators, class fields, paths): it is an input too.
  const configs = Object.values(entries).map(nearestTsconfig);
  const inputs = [...new Set([...Object.keys(result.metafile.inputs).map((p) => resolve(p)), ...configs.filter((c) => c !== undefined)])];
  const hashes = await hashFiles(inputs);
  const manifest: Manifest = {
    id: '',
    files: [],
    inputs: Object.fromEntries(inputs.map((p, i) => [p, hashes[i] ?? ''])),
    externals: [...externals].sort(),
  };
  const outputs: [string, string | Uint8Array][] = [];
  for (const out of result.outputFiles) {
    const name = relative(staging, out.path);
    manifest.files.push(name);
    let contents: string | Uint8Array = out.contents;
    // Source maps name their sources by absolute URL, so they hold wherever the program is copied.
    if (name.endsWith('.map')) {
      const map = JSON.parse(out.text) as { sources: string[] };
      const base = pathToFileURL(out.path);
      map.sources = map.sources.map((s) => new URL(s, base).href);
      contents = JSON.stringify(map);
    }
    outputs.push([name, contents]);
  }
  manifest.files.sort();
  // The folder is named by what it holds, not by what it was made from: two runs compiling the same
  // inputs at once may get chunks named differently, and each manifest must name the files of its
  // own folder (a folder named by inputs would hold the first run's files under the second's list).
  const made = outputs.map(([name, contents]) => [name, sha256(contents)]).sort(([a], [b]) => (a! < b! ? -1 : 1));
  manifest.id = sha256(JSON.stringify({ key, made })).slice(0, 32);
  const dir = join(root, manifest.id);
  for (const [name, contents] of outputs) {
    await mkdir(dirname(join(staging, name)), { recursive: true });
    await writeFile(join(staging, name), contents);
  }
  if (manifest.files.every((f) => existsSync(join(dir, f)))) await rm(staging, { recursive: true, force: true });
  else {
    // A folder missing some of its files (emptied in part) is replaced. Another run may finish the
    // same program first: then its copy is used and ours dropped.
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir).catch(async () => rm(staging, { recursive: true, force: true }));
  }
  await writeAtomically(join(root, 'entries', `${key}.json`), JSON.stringify(manifest));
  return program(manifest);
}
