/**
 * Resolving a relative import the way esbuild would, in the compiling process. An inlined program
 * has thousands of relative imports (the library's files, and the files inside each package);
 * asking esbuild to resolve each from a plugin is a round trip per import, most of a compile's CPU.
 * The common cases are answered here; anything else (a folder, a package's `sideEffects` list, a
 * missing file) returns undefined and is left to esbuild.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';

/** What esbuild would have answered: the file, and whether it may be left out when unused. */
export interface Resolved {
  path: string;
  /** `false` when its package declares it side-effect free; undefined when it may have effects. */
  sideEffects?: false;
  /** Never set: a file found here is the program's to compile in or import (esbuild's own externals are its to decide). */
  external?: undefined;
}

/** esbuild's default extensions, in its order, for a specifier without one. */
const EXTENSIONS = ['.tsx', '.ts', '.jsx', '.js', '.css', '.json'];

/** A `.js` specifier in TypeScript names the `.ts` file beside it (and so on). */
const TS_FOR_JS: Record<string, string[]> = { '.js': ['.ts', '.tsx'], '.jsx': ['.ts', '.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] };

const TS_FILE = /\.(c|m)?tsx?$/;

type SideEffects = false | undefined | 'ask' | Set<string>;

/** Caches of one build: file checks, real paths, package manifests. */
export class RelativeResolver {
  readonly #isFile = new Map<string, boolean>();
  readonly #real = new Map<string, string>();
  readonly #sideEffects = new Map<string, SideEffects>();

  /** The file `specifier` (starting with `./` or `../`) names from `resolveDir`, or undefined to ask esbuild. */
  resolve(specifier: string, resolveDir: string, importer: string): Resolved | undefined {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
    // A query or a fragment, or a trailing slash (a folder): esbuild's own rules.
    if (/[?#]/.test(specifier) || specifier.endsWith('/')) return undefined;
    const file = this.#candidate(resolve(resolveDir, specifier), TS_FILE.test(importer));
    if (file === undefined) return undefined;
    const real = this.#realpath(file);
    const sideEffects = this.#packageSideEffects(real);
    return sideEffects === 'ask' ? undefined : { path: real, ...(sideEffects === false ? { sideEffects } : {}) };
  }

  #candidate(path: string, fromTypeScript: boolean): string | undefined {
    if (this.#fileAt(path)) return path;
    const ext = extname(path);
    if (fromTypeScript && TS_FOR_JS[ext]) {
      const base = path.slice(0, -ext.length);
      for (const ts of TS_FOR_JS[ext]) if (this.#fileAt(base + ts)) return base + ts;
    }
    for (const e of EXTENSIONS) if (this.#fileAt(path + e)) return path + e;
    return undefined;
  }

  #fileAt(path: string): boolean {
    let is = this.#isFile.get(path);
    if (is === undefined) {
      try {
        is = statSync(path).isFile();
      } catch {
        is = false;
      }
      this.#isFile.set(path, is);
    }
    return is;
  }

  #realpath(path: string): string {
    let real = this.#real.get(path);
    if (real === undefined) {
      real = realpathSync(path);
      this.#real.set(path, real);
    }
    return real;
  }

  /**
   * `false` when the nearest package.json above the file says the file has no side effects (as
   * esbuild reads it); `'ask'` when it gives patterns (esbuild matches them) or cannot be read.
   */
  #packageSideEffects(file: string): false | undefined | 'ask' {
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      const manifest = join(dir, 'package.json');
      if (this.#fileAt(manifest)) {
        if (!this.#sideEffects.has(manifest)) this.#sideEffects.set(manifest, readSideEffects(manifest));
        const flag = this.#sideEffects.get(manifest);
        return flag instanceof Set ? (flag.has(file) ? undefined : false) : flag;
      }
      if (dirname(dir) === dir) return undefined;
    }
  }
}

/**
 * A package.json's `sideEffects`: `false` (none of its files has any), undefined (any may), a set
 * of the files that have some (a list of plain paths), or `'ask'` (patterns: esbuild matches them).
 */
function readSideEffects(manifest: string): SideEffects {
  try {
    const field = (JSON.parse(readFileSync(manifest, 'utf8')) as { sideEffects?: unknown }).sideEffects;
    if (field === false) return false;
    if (field === undefined || field === true) return undefined;
    if (Array.isArray(field) && field.every((f) => typeof f === 'string' && !/[*?[{]/.test(f)))
      return new Set(field.map((f: string) => resolve(dirname(manifest), f)));
    return 'ask';
  } catch {
    return 'ask';
  }
}
