import { copyFile, rm } from 'node:fs/promises';
import { ROOT, sparkEnv } from './spark.js';
import { runToEnd } from './proc.js';
import type { ScaleOut } from '../scale-probe.js';

/** Where the project is compiled for the no-tsx measurements (git-ignored). */
const OWN_BUILD = `${ROOT}.sps-tmp/bench-dist`;

/** The compiled project the probes run from: the bench's own build, or one given to {@link useBuild}. */
let compiledDir = OWN_BUILD;
/** The compile (or the build given), once per run: probes wait for it. */
let compiled: Promise<number> | undefined;

/** The folder of the compiled project the probes run from. */
export function compiledRoot(): string {
  return compiledDir;
}

/** The bench server's TypeScript source next to its compiled copy: the TypeScript side of the compiled-library runs, compiled by the driver as a user's server module is. */
function placeTsServer(): Promise<void> {
  return copyFile(`${ROOT}benchmarks/servers/bench-server.ts`, `${compiledDir}/benchmarks/servers/bench-server.ts`);
}

/** Compiles the project with its build script to its own folder; resolves with the compile time in ms. */
export async function compileProject(): Promise<number> {
  const t0 = performance.now();
  // The project's own build (tsc plus the files it does not emit), into the bench's directory.
  const r = await runToEnd(process.execPath, [`${ROOT}scripts/build.mjs`, '--outDir', OWN_BUILD, '--sourceMap', 'false', '--declaration', 'false'], 120_000);
  if (r.code !== 0) throw new Error(`build failed: ${r.stdout.slice(-1500)}${r.stderr.slice(-1500)}`);
  await placeTsServer();
  return performance.now() - t0;
}

/**
 * Runs the probes from a build already made (the suite's smoke run uses `npm run build`'s dist/,
 * which it checks is fresh): no compile of its own, and nothing removed at the end.
 */
export function useBuild(dir: string): void {
  compiledDir = dir;
  compiled = placeTsServer().then(() => 0);
}

/** Removes the bench's own compiled copy (a build given to {@link useBuild} is left alone). */
export async function removeCompiled(): Promise<void> {
  await rm(OWN_BUILD, { recursive: true, force: true });
}

/** What compiled-probe.js prints. */
export interface CompiledProbeOut {
  /** JavaScript server module. */
  start: Record<string, number[]>;
  stop: Record<string, number[]>;
  idleRss: number[];
  /** The same server in TypeScript, compiled by the driver (cache hits after the first). */
  startTs: Record<string, number[]>;
  stopTs: Record<string, number[]>;
  idleRssTs: number[];
  /** compileServer of the TypeScript server into an empty cache, then again (a hit). */
  compileMissMs: number[];
  compileHitMs: number[];
  /** The same server inlined with the worker, the library and its packages (processes on one machine, threads), into an empty cache. */
  compileInlineMissMs: number[];
  /** Library start/stop on a shared Spark application (when a master was given). */
  sparkStart: Record<string, number[]>;
  sparkStop: Record<string, number[]>;
  /** The same Spark starts and stops with `isolation: 'thread'`, alternated with the rows above. */
  sparkStartThread: Record<string, number[]>;
  sparkStopThread: Record<string, number[]>;
  /** Why the thread rows are missing, when they are. */
  sparkThreadSkipped?: string;
}

/** Runs a compiled probe script (path under the compiled benchmarks/) with plain node, or the `node` given, and returns what it printed on its `BENCH_JSON` line. */
export async function runProbe<T>(script: string, args: string[], timeoutMs: number, node = process.execPath): Promise<T> {
  const r = await runToEnd(node, [`${compiledDir}/benchmarks/${script}`, ...args], timeoutMs, sparkEnv());
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (r.code !== 0 || !line) throw new Error(`${script} exited ${r.code}: ${r.stderr.slice(-1500)}`);
  return JSON.parse(line.slice('BENCH_JSON '.length)) as T;
}

/** Runs the compiled start/stop + idle memory probe with plain node (`node`: another Node binary; its workers run on it too). */
export function runCompiledProbe(sizes: number[], reps: number, sparkMaster?: string, node?: string): Promise<CompiledProbeOut> {
  return runProbe<CompiledProbeOut>('compiled-probe.js', [sizes.join(','), String(reps), ...(sparkMaster ? [sparkMaster] : [])], 400_000, node);
}

/**
 * Compiles once per run, then runs the scale probe (embedded start, requestAll, stop, control bytes
 * per partition count); `uncounted`: the largest size once more with workers that count no requests.
 */
export async function runScaleProbe(sizes: number[], pings: number, uncounted = false): Promise<Record<string, ScaleOut>> {
  await ensureCompiled();
  return runProbe<Record<string, ScaleOut>>('scale-probe.js', [sizes.join(','), String(pings), ...(uncounted ? ['uncounted'] : [])], 900_000);
}

/** Times a plain-node import of the compiled library + server (no tsx), spawn to exit, in ms. */
export async function compiledImportMs(): Promise<{ wallMs: number; importMs: number }> {
  const t0 = performance.now();
  const r = await runToEnd(process.execPath, [`${compiledDir}/benchmarks/servers/import-probe.js`], 60_000);
  const m = /IMPORTED ([\d.]+)/.exec(r.stdout);
  return { wallMs: performance.now() - t0, importMs: m ? Number(m[1]) : Number.NaN };
}

const probes = new Map<string, Promise<CompiledProbeOut>>();

/** Compiles once per run, then runs the probe once per settings (benchmarks 3 and 5 share it). */
export function compiledProbe(sizes: number[], reps: number, sparkMaster?: string): Promise<CompiledProbeOut> {
  const key = `${sizes.join(',')}x${reps}${sparkMaster ? ` on ${sparkMaster}` : ''}`;
  let p = probes.get(key);
  if (!p) {
    compiled ??= compileProject();
    p = compiled.then(() => runCompiledProbe(sizes, reps, sparkMaster));
    probes.set(key, p);
  }
  return p;
}

/** Compiles once per run (shared with {@link compiledProbe}). */
export function ensureCompiled(): Promise<number> {
  compiled ??= compileProject();
  return compiled;
}
