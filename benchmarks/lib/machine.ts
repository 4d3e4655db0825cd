import { cpus, totalmem, release, platform, arch } from 'node:os';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT, VENV_PYTHON } from './spark.js';
import { findNatsServer } from '../../src/transport/nats-server.js';

const run = promisify(execFile);

/** Machine, runtime and dependency versions recorded with every result. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  totalMemGiB: number;
  os: string;
  node: string;
  versions: Record<string, string>;
}

async function pkgVersion(name: string): Promise<string> {
  try {
    return (JSON.parse(await readFile(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

async function cmdVersion(cmd: string, args: string[], pattern: RegExp): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 20_000 });
    return pattern.exec(stdout + stderr)?.[1] ?? 'unknown';
  } catch {
    return 'not available';
  }
}

/** Collects machine info and the versions of everything the benchmarks exercise. */
export async function machineInfo(): Promise<MachineInfo> {
  const c = cpus();
  const versions: Record<string, string> = {};
  for (const p of ['xstate', '@nats-io/nats-core', '@nats-io/transport-node', 'msgpackr', '@trufflesuite/uws-js-unofficial', 'tsx', 'autocannon']) {
    versions[p] = await pkgVersion(p);
  }
  let nats = 'not available';
  try {
    nats = await cmdVersion(findNatsServer(), ['--version'], /v?(\d+\.\d+\.\d+)/);
  } catch {
    // not installed
  }
  versions['nats-server'] = nats;
  versions.pyspark = await cmdVersion(VENV_PYTHON, ['-c', 'import pyspark; print(pyspark.__version__)'], /(\d+\.\d+\.\d+\S*)/);
  versions.java = await cmdVersion('java', ['-version'], /version "([^"]+)"/);
  return {
    cpuModel: c[0]?.model ?? 'unknown',
    cores: c.length,
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    versions,
  };
}
