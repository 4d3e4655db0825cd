import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ServerModuleError } from '../../errors.js';
import { WORKER_ENV } from '../../worker/worker-env.js';
import { compileServer, type CompiledProgram } from './compile-server.js';

const TS_MODULE = /\.(c|m)?tsx?$/;

/**
 * Node flags of every worker process (and partition host). The young generation's semi-spaces
 * are bounded: V8 sizes them for throughput, and an idle partition server kept them grown. V8's
 * background pool has one thread: a worker is one of many processes on its host, and each pool
 * thread costs resident memory; one still keeps concurrent GC and compilation off the main thread.
 */
const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=1'];

/**
 * The first Node major whose V8 keeps heap sizes out of the flag hash it checks code caches
 * against. Before it (Node 20, 22), a V8 flag on the command line makes every worker compile
 * the Node built-ins it loads from source instead of using the binary's cache: more CPU per
 * worker start than the bounded young generation saves in memory, so those workers go without.
 */
const HEAP_FLAGS_KEEP_CODE_CACHE = 24;

/**
 * {@link WORKER_NODE_FLAGS} for the Node major running the driver (the workers run the same
 * binary), but those the driver's `NODE_OPTIONS` (which the workers inherit) set already: a flag
 * on the command line would override the user's choice.
 */
export function workerNodeFlags(nodeOptions = process.env.NODE_OPTIONS ?? '', nodeMajor = Number(process.versions.node.split('.')[0])): string[] {
  return WORKER_NODE_FLAGS.filter(
    (flag) => !nodeOptions.includes(flag.split('=')[0]!) && (nodeMajor >= HEAP_FLAGS_KEEP_CODE_CACHE || !flag.startsWith('--max-semi-space-size')),
  );
}

/** How a run's workers start: the same for every partition of the run. */
export interface WorkerProgram {
  /** The Node binary and its arguments (flags, then the worker entry). */
  command: string;
  args: string[];
  /** The server module the workers import (the compiled one for a TypeScript module). */
  serverModule: string;
  /** Environment every worker of the run gets on top of the run's own (`SPS_SOURCE_MAPS`). */
  env: Record<string, string>;
  /**
   * The compiled program, when there is one: launchers whose workers run on other hosts ship its
   * files with the job (paths inside `compiled.dir` above are then relative to the shipped copy).
   */
  compiled?: CompiledProgram;
}

/** True when this library runs from its TypeScript sources (tests, benchmarks), not from dist/. */
function librarySources(): boolean {
  return TS_MODULE.test(fileURLToPath(import.meta.url));
}

/** A file path for a module given as a path or a `file:` URL; other URLs are not files. */
function filePath(module: string): string | undefined {
  if (module.startsWith('file:')) return fileURLToPath(module);
  return /^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module) ? undefined : module;
}

/**
 * Prepares the workers of a run, once per run. A JavaScript server module on the compiled library
 * runs as it is. A TypeScript one is compiled to JavaScript (cached by content hash; see
 * `compile-server.ts`), and when the library itself runs from its TypeScript sources, its worker
 * entry is compiled along; either way workers run plain Node, with source maps so stack traces
 * name the TypeScript lines. With `inline` (threads, and processes started on this machine), the
 * worker entry, the library and its packages are compiled in with the server module, whatever its
 * language: every worker loads its own copy of each module, and most of a worker's start went to
 * loading the hundreds of files a few now replace. A module that is not a file runs as it is.
 *
 * @throws ServerModuleError when a TypeScript module is not a file, or does not compile.
 */
export async function prepareWorker(serverModule: string, opts: { inline?: boolean } = {}): Promise<WorkerProgram> {
  const sources = librarySources();
  const compiledWorker = fileURLToPath(new URL('../../worker/worker.js', import.meta.url));
  const file = filePath(serverModule);
  const inline = opts.inline === true && file !== undefined;
  if (!sources && !inline && !TS_MODULE.test(serverModule))
    return { command: process.execPath, args: [...workerNodeFlags(), compiledWorker], serverModule, env: {} };
  if (file === undefined) throw new ServerModuleError(serverModule, 'must be a file (a path or a file: URL) to be compiled for the workers');
  const workerEntry = sources ? fileURLToPath(new URL('../../worker/worker.ts', import.meta.url)) : compiledWorker;
  const compiled = await compileServer(
    file,
    sources || inline ? { worker: workerEntry, inline } : { dir: dirname(dirname(dirname(fileURLToPath(import.meta.url)))) },
  );
  const entry = compiled.worker ? join(compiled.dir, compiled.worker) : compiledWorker;
  return {
    command: process.execPath,
    args: [...workerNodeFlags(), entry],
    serverModule: join(compiled.dir, compiled.server),
    env: { [WORKER_ENV.sourceMaps]: '1', [WORKER_ENV.serverSource]: file },
    compiled,
  };
}
