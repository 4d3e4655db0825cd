import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The compiled `sps` command, as an installed package runs it (plain Node, no TypeScript loader). */
export const BUILT_CLI = join(ROOT, 'dist/src/cli/main.js');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Throws, naming the first stale file, when `dist/` is older than the sources under `dirs`: the
 * CLI tests run the compiled command (each spawn through a TypeScript loader costs seconds on a
 * loaded machine), and would otherwise test yesterday's code. `npm test` builds first; a single
 * file run may not have.
 */
export function assertBuiltFresh(dirs: string[] = ['src']): void {
  for (const source of dirs.flatMap((d) => tsFiles(join(ROOT, d)))) {
    const built = join(ROOT, 'dist', relative(ROOT, source)).replace(/\.ts$/, '.js');
    let builtAt: number;
    try {
      builtAt = statSync(built).mtimeMs;
    } catch {
      throw new Error(`${relative(ROOT, built)} is missing: run \`npm run build\` first`);
    }
    if (statSync(source).mtimeMs > builtAt) throw new Error(`${relative(ROOT, source)} is newer than its build: run \`npm run build\` first`);
  }
}

/** {@link assertBuiltFresh} of the library's sources: what the compiled `sps` command runs. */
export function assertBuiltCliFresh(): void {
  assertBuiltFresh(['src']);
}
