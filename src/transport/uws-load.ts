/**
 * Finds the native uWebSockets.js binary that fits this process: its platform, CPU, Node ABI and,
 * on Linux, its glibc. The official uWebSockets.js is published outside the npm registry, so the
 * pinned npm builds below are tried in turn; each says why it does not fit, so the caller can name
 * the reason (and the `auto` HTTP choice can fall back to `node:http` saying so).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SparkPartitionServerError } from '../errors.js';

const require = createRequire(import.meta.url);

// `any`: the native module ships no usable types.
type Uws = any;

/** A loaded uWebSockets.js binary and how it is named in `HttpServer.implementation`. */
export interface LoadedUws {
  uws: Uws;
  implementation: string;
}

/**
 * An npm package that ships uWebSockets.js binaries as `uws_<platform>_<arch>_<abi>.node`.
 * `minGlibc` is the newest glibc symbol version its Linux binaries need (read from them with
 * `objdump -T`): a binary loaded on an older glibc fails, so it is not tried there.
 */
interface UwsBuild {
  name: string;
  /** Folder of the binaries within the package. */
  binaries: string;
  minGlibc: string;
}

/**
 * Newest first. `@btc-vision/uwebsockets.js` republishes uWebSockets.js v20.57 with binaries for
 * Node 20 to 25 (ABI 115, 127, 137, 141) built on glibc 2.38; the trufflesuite fork (v20.30) has
 * Node 16 to 20 (ABI 93, 108, 115) built on glibc 2.27, so it is what loads on older Linux.
 */
const BUILDS: readonly UwsBuild[] = [
  { name: '@btc-vision/uwebsockets.js', binaries: '.', minGlibc: '2.38' },
  { name: '@trufflesuite/uws-js-unofficial', binaries: 'binaries', minGlibc: '2.27' },
];

/** True when version `a` (e.g. `2.36`) is at least `b`. */
function atLeast(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

let glibc: string | null | undefined;

/** This process's glibc version, e.g. `2.36`; null off Linux or on another C library (musl). */
export function glibcVersion(): string | null {
  if (glibc !== undefined) return glibc;
  if (process.platform !== 'linux') return (glibc = null);
  // The diagnostic report's header is the one place Node states the glibc it runs on.
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return (glibc = header?.glibcVersionRuntime ?? null);
}

/** This process as a binary must fit it, e.g. `Node v24.22.3, ABI 137, linux x64, glibc 2.36`. */
export function runtimeLabel(): string {
  const libc = process.platform === 'linux' ? `, ${glibcVersion() ? `glibc ${glibcVersion()}` : 'no glibc'}` : '';
  return `Node ${process.version}, ABI ${process.versions.modules}, ${process.platform} ${process.arch}${libc}`;
}

/** The package's folder and version, or undefined when it is not installed. */
function installed(name: string): { dir: string; version: string } | undefined {
  let dir: string;
  try {
    // From the package's main entry: some builds export nothing else (not even package.json).
    dir = dirname(require.resolve(name));
  } catch {
    return undefined;
  }
  // The main entry may sit in a subfolder: the package's folder is the one whose package.json names it.
  for (; dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return { dir, version: pkg.version ?? '?' };
    } catch {
      // No package.json here: one folder up.
    }
  }
  return undefined;
}

/** Loads one build's binary for this process, or says why it does not fit. */
function tryBuild(build: UwsBuild): LoadedUws | string {
  const found = installed(build.name);
  if (!found) return `${build.name} is not installed (run "npm install")`;
  const label = `${build.name}@${found.version}`;
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const path = join(found.dir, build.binaries, binary);
  if (!existsSync(path)) return `${label} has no ${binary}`;
  if (process.platform === 'linux') {
    const have = glibcVersion();
    if (have === null) return `${label} needs glibc ${build.minGlibc} or newer; this Linux has another C library`;
    if (!atLeast(have, build.minGlibc)) return `${label} needs glibc ${build.minGlibc} or newer, this is glibc ${have}`;
  }
  try {
    // The binary itself, not the package's entry: some entries fall back silently to a slow shim.
    return { uws: require(path), implementation: `uWebSockets.js (native, ${label})` };
  } catch (err) {
    return `${label}'s ${binary} does not load: ${(err as Error).message}`;
  }
}

let found: LoadedUws | { reasons: string[] } | undefined;

/**
 * The uWebSockets.js binary for this process, or why there is none (one reason per build tried).
 * An installed official `uWebSockets.js` package comes first. Decided once per process.
 */
export function findUws(): LoadedUws | { reasons: string[] } {
  if (found) return found;
  try {
    return (found = { uws: require('uWebSockets.js'), implementation: 'uWebSockets.js (native, official)' });
  } catch {
    // Not installed (the usual case): the npm builds below.
  }
  const reasons: string[] = [];
  for (const build of BUILDS) {
    const r = tryBuild(build);
    if (typeof r !== 'string') return (found = r);
    reasons.push(r);
  }
  return (found = { reasons });
}

/** Why no uWebSockets.js binary serves here, in one sentence; undefined when one does. */
export function uwsUnavailable(): string | undefined {
  const f = findUws();
  return 'reasons' in f ? `no uWebSockets.js binary for ${runtimeLabel()}: ${f.reasons.join('; ')}` : undefined;
}

/**
 * Loads the native uWebSockets.js binary for this process.
 * @throws SparkPartitionServerError `SPS_UWS_LOAD` naming, for each build tried, why it does not fit.
 */
export function loadUws(): LoadedUws {
  const f = findUws();
  if ('uws' in f) return f;
  throw new SparkPartitionServerError(
    'SPS_UWS_LOAD',
    `${uwsUnavailable()}. Use the node:http server (option http: 'node' or 'auto'), or pass an httpServer factory of your own.`,
  );
}
