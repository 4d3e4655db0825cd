import { readFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { WorkerProgram } from '../driver/launch/worker-command.js';

/** Marks an argument or environment value as a path inside the shipped program (the runner's `PROGRAM_PREFIX`). */
const PROGRAM_PREFIX = 'sps-program:';

/** How a Spark job starts its workers: argv and environment, and the compiled program it carries. */
export interface ShippedWorker {
  argv: string[];
  env: Record<string, string>;
  /** The compiled program's files by relative name; each executor writes them once (by `id`). */
  program?: { id: string; files: Record<string, string> };
}

/**
 * The compiled server module (and, from sources, the worker entry) ships with the job: its files go
 * in the job, and the paths into it in argv and the environment become `sps-program:<name>`, which
 * the runner resolves against its executor's own copy. Packages stay where the driver found them.
 */
export async function shipWorker(worker: WorkerProgram, env: Record<string, string>): Promise<ShippedWorker> {
  const argv = [worker.command, ...worker.args];
  const compiled = worker.compiled;
  if (!compiled) return { argv, env };
  const inside = (value: string): string => (value.startsWith(compiled.dir + sep) ? PROGRAM_PREFIX + value.slice(compiled.dir.length + 1) : value);
  const files = await Promise.all(compiled.files.map(async (name) => [name, await readFile(join(compiled.dir, name), 'utf8')] as const));
  return {
    argv: argv.map(inside),
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, inside(v)])),
    program: { id: compiled.id, files: Object.fromEntries(files) },
  };
}
