import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DependencyMissingError } from '../errors.js';
import { inVenv, onPath, venvDirs } from '../process/executables.js';
import { SETUP_COMMAND, userVenv } from '../process/user-cache.js';

/** The executables a Spark application needs on the machine that runs the driver. */
export interface SparkInstallation {
  /** Spark's home: the pyspark package directory from `npx sps setup --spark` or `npm run setup`, or `$SPARK_HOME`. */
  home: string;
  sparkSubmit: string;
  sparkClass: string;
  /** Python for the runner (driver) and for the executors' Python workers. */
  python: string;
  java: string;
}

const SETUP_HINT = `Run "${SETUP_COMMAND} --spark" (installs the pinned pyspark and the runner's Python packages into ${userVenv()} and checks Java; in a clone of this repository "npm run setup").`;

/** The pyspark package directory inside a venv, whatever its Python version. */
function venvSparkHome(venv: string): string | undefined {
  const lib = join(venv, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const home = join(lib, py, 'site-packages', 'pyspark');
    if (existsSync(join(home, 'bin', 'spark-submit'))) return home;
  }
  return undefined;
}

/**
 * Finds Spark, Python and Java: the explicit options, then `$SPARK_HOME` / `$PYSPARK_PYTHON` /
 * `$JAVA_HOME`, then the project's `.venv`, then `PATH`.
 * @throws DependencyMissingError naming what is missing and how to get it.
 */
export function findSpark(opts: { sparkHome?: string; python?: string } = {}): SparkInstallation {
  let home = opts.sparkHome ?? process.env.SPARK_HOME;
  const origin = opts.sparkHome ? 'option sparkHome' : '$SPARK_HOME';
  if (home && !existsSync(join(home, 'bin', 'spark-submit'))) {
    throw new DependencyMissingError(`spark-submit in "${home}" (${origin})`, 'Point it at a Spark home (a directory with bin/spark-submit).');
  }
  home ??= venvDirs()
    .map(venvSparkHome)
    .find((h) => h !== undefined);
  if (!home) throw new DependencyMissingError('Spark (spark-submit)', `${SETUP_HINT} Or set $SPARK_HOME / the sparkHome option.`);

  let python = opts.python ?? process.env.PYSPARK_PYTHON;
  python ??= inVenv('python') ?? onPath('python3');
  if (!python) throw new DependencyMissingError('Python 3 (for the PySpark runner)', SETUP_HINT);
  const check = spawnSync(python, ['-c', 'import pyspark, nats, msgpack'], { encoding: 'utf8' });
  if (check.status !== 0) {
    throw new DependencyMissingError(
      `Python packages pyspark, nats-py and msgpack in ${python}`,
      `${SETUP_HINT} (${(check.stderr || check.error?.message || '').trim().split('\n').at(-1)})`,
    );
  }

  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : onPath('java');
  if (!java || !existsSync(java)) {
    throw new DependencyMissingError('java', 'Spark needs Java 17 or newer: install it (e.g. apt-get install openjdk-17-jre-headless) or set $JAVA_HOME.');
  }
  const version = spawnSync(java, ['-version'], { encoding: 'utf8' });
  const major = Number(/version "(\d+)/.exec(`${version.stderr}${version.stdout}`)?.[1] ?? NaN);
  if (!(major >= 17)) {
    throw new DependencyMissingError(
      'Java 17 or newer',
      `"${java} -version" reports ${Number.isNaN(major) ? 'no version' : `Java ${major}`}; Spark 4 needs 17+.`,
    );
  }
  return { home, sparkSubmit: join(home, 'bin', 'spark-submit'), sparkClass: join(home, 'bin', 'spark-class'), python, java };
}
