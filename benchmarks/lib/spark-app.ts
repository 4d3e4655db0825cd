import { SparkApplication } from '../../src/index.js';

/**
 * Spark configuration of the benchmarks' applications: small JVMs (the machine has 2 cores and
 * the partition servers share it), no adaptive query execution, shuffles to 4 partitions.
 */
export const BENCH_SPARK_CONF: Record<string, string> = {
  'spark.driver.memory': '1g',
  'spark.executor.memory': '512m',
  'spark.sql.shuffle.partitions': '4',
  'spark.default.parallelism': '4',
  'spark.sql.adaptive.enabled': 'false',
};

/**
 * Starts one Spark application (spark-submit of the library's PySpark runner) on `master`, runs
 * `fn` with it, and always closes it. Also returns how long the start took.
 */
export async function withSparkApp<T>(master: string, log: (line: string) => void, fn: (app: SparkApplication, upMs: number) => Promise<T>): Promise<T> {
  const t0 = performance.now();
  // Spark's and the workers' output is dropped, except the first lines that tell of a failure.
  let shown = 0;
  const app = await SparkApplication.start({
    master,
    conf: BENCH_SPARK_CONF,
    startTimeoutMs: 180_000,
    log: (line) => {
      if (shown < 10 && /\bfailed: |RuntimeError|ERROR /.test(line) && !/^\s*at /.test(line)) {
        shown++;
        log(`  spark: ${line.slice(0, 300)}`);
      }
    },
  });
  const upMs = performance.now() - t0;
  try {
    return await fn(app, upMs);
  } finally {
    await app.close();
  }
}
