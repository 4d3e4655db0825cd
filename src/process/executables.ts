/** Finding this package's folder and the executables it runs (nats-server, Python, Spark). */
import { existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userVenv } from './user-cache.js';

/** The folder of this package (the one holding package.json), found from this module's location. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src', 'index.ts'))) return dir;
    const up = dirname(dir);
    if (up === dir) return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
    dir = up;
  }
}

/**
 * The virtual environments to look in: the project `.venv` next to this package (a clone, after
 * `npm run setup`), the one in the working directory, then the per-user one of `npx sps setup`.
 */
export function venvDirs(): string[] {
  return [...new Set([...[packageRoot(), process.cwd()].map((root) => join(root, '.venv')), userVenv()])];
}

/** `name` from the `bin` folder of the first of {@link venvDirs} that has it. */
export function inVenv(name: string): string | undefined {
  return venvDirs()
    .map((v) => join(v, 'bin', name))
    .find((p) => existsSync(p));
}

/** `name` from `PATH`, if there. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}
