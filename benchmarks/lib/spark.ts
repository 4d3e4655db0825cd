import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runToEnd } from './proc.js';

/** The project root (two levels above this file). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** spark-submit of the project's .venv (pyspark from `npm run setup`). */
export const SPARK_SUBMIT = `${ROOT}.venv/bin/spark-submit`;
/** The .venv's Python, used by spark-submit for the driver and the Python workers. */
export const VENV_PYTHON = `${ROOT}.venv/bin/python`;

/** Why Spark cannot run here, or undefined when it can (spark-submit present, java on PATH). */
export function sparkUnavailable(): string | undefined {
  if (!existsSync(SPARK_SUBMIT)) return `no ${SPARK_SUBMIT} (run npm run setup)`;
  const path = (process.env.PATH ?? '').split(':');
  if (!process.env.JAVA_HOME && !path.some((d) => existsSync(`${d}/java`))) return 'java not found';
  return undefined;
}

/** The pyspark package directory in .venv (a Spark home), or undefined. */
export function venvSparkHome(): string | undefined {
  const lib = `${ROOT}.venv/lib`;
  if (!existsSync(lib)) return undefined;
  return readdirSync(lib)
    .map((py) => `${lib}/${py}/site-packages/pyspark`)
    .find((h) => existsSync(`${h}/bin/spark-submit`));
}

/** Environment for Spark processes: loopback only, the .venv's Python and Spark home. */
export function sparkEnv(): NodeJS.ProcessEnv {
  const home = process.env.SPARK_HOME ?? venvSparkHome();
  return {
    ...process.env,
    ...(home ? { SPARK_HOME: home } : {}),
    SPARK_LOCAL_IP: '127.0.0.1',
    SPARK_LOCAL_HOSTNAME: 'localhost',
    PYSPARK_PYTHON: VENV_PYTHON,
    PYSPARK_DRIVER_PYTHON: VENV_PYTHON,
  };
}

/**
 * Runs a benchmark PySpark script with spark-submit and returns the object it printed on its
 * `BENCH_JSON ` line, plus the wall time of the whole submit.
 */
export async function sparkSubmit<T>(
  script: string,
  master: string,
  args: (string | number)[],
  timeoutMs: number,
): Promise<{ out: T; wallMs: number; launchedAt: number }> {
  const launchedAt = Date.now();
  const t0 = performance.now();
  const r = await runToEnd(
    SPARK_SUBMIT,
    [
      '--master',
      master,
      '--conf',
      'spark.ui.enabled=false',
      '--conf',
      'spark.driver.host=127.0.0.1',
      '--conf',
      'spark.driver.bindAddress=127.0.0.1',
      '--driver-memory',
      '2g',
      fileURLToPath(new URL(`../spark/${script}`, import.meta.url)),
      ...args.map(String),
    ],
    timeoutMs,
    sparkEnv(),
  );
  const wallMs = performance.now() - t0;
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (r.code !== 0 || !line) {
    throw new Error(
      `spark-submit ${script} ${master} exited ${r.code}: ${
        r.stderr
          .split('\n')
          .filter((l) => /Error|Exception/.test(l))
          .slice(-5)
          .join(' | ') || r.stderr.slice(-1500)
      }`,
    );
  }
  return { out: JSON.parse(line.slice('BENCH_JSON '.length)) as T, wallMs, launchedAt };
}
