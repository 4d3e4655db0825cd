import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparkApplication, type SparkApplicationOptions } from '../../src/index.js';
import { findSpark } from '../../src/spark/spark-home.js';
import { childrenOf } from './harness.js';

/** Small JVMs: the suite runs on a 2-core machine next to other test files. */
export const SMALL_SPARK_CONF: Record<string, string> = {
  'spark.driver.memory': '512m',
  'spark.executor.memory': '512m',
  'spark.sql.shuffle.partitions': '4',
  'spark.default.parallelism': '4',
  'spark.sql.adaptive.enabled': 'false',
};

/** Worker output is only shown when asked for (SPS_TEST_LOG=1), to keep test output readable. */
export const testLog = process.env.SPS_TEST_LOG ? undefined : (false as const);

/** Starts a shared Spark application for a test file. */
export function startApp(master: string, extra: Partial<SparkApplicationOptions> = {}): Promise<SparkApplication> {
  return SparkApplication.start({ master, conf: SMALL_SPARK_CONF, log: testLog, ...extra });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of this machine's processes whose environment (and argv) `matches` says are wanted; those gone meanwhile, or not ours to read, are left out. */
export function pidsWhere(matches: (env: string[], argv: () => string[]) => boolean): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      if (matches(env, () => readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0'))) found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/**
 * Pids of this machine's worker processes of cluster run `clusterId`, found by their environment
 * (the driver does not start Spark's workers, so it has no pids of its own for them).
 */
export function workerPidsOf(clusterId: string): number[] {
  return pidsWhere(
    (env, argv) =>
      env.includes(`SPS_CLUSTER_ID=${clusterId}`) &&
      env.some((e) => e.startsWith('SPS_PARTITION=')) &&
      // The worker itself (the library's worker entry, or the compiled one), not a process it spawned with the same environment.
      argv().some((a) => /(runtime\/worker\.js|\/sps-worker\.mjs)$/.test(a)),
  );
}

/** Polls `check` every 100 ms until it holds or `limitMs` passed (bounded; never a timed assertion). */
export async function until(check: () => boolean | Promise<boolean>, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/**
 * The application's active Spark jobs once Spark's status listener caught up: it learns a job's end
 * from its listener bus, after the job's action returned, so a job that just ended may still be
 * listed for a moment on a loaded machine. Waits up to 30 s for none; returns what is listed then.
 */
export async function activeJobsSettled(app: SparkApplication): Promise<number[]> {
  let jobs: number[] = [];
  await until(async () => (jobs = (await app.status()).activeJobs).length === 0, 30_000);
  return jobs;
}

/** A Spark standalone cluster on loopback: one master and `workers` workers, from the pyspark wheel. */
export interface Standalone {
  masterUrl: string;
  pids: number[];
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts the cluster and resolves once the master shows every worker ALIVE. */
export async function startStandalone(workers = 2, coresPerWorker = 2): Promise<Standalone> {
  const spark = findSpark();
  const dir = mkdtempSync(join(tmpdir(), 'sps-standalone-'));
  const env = {
    ...process.env,
    SPARK_HOME: spark.home,
    SPARK_LOCAL_IP: '127.0.0.1',
    SPARK_WORKER_DIR: join(dir, 'work'),
    SPARK_LOG_DIR: join(dir, 'logs'),
    PYSPARK_PYTHON: spark.python,
    SPARK_DAEMON_MEMORY: '256m',
  };
  const children: ChildProcess[] = [];
  const output: string[] = [];
  const launch = (args: string[]): void => {
    const child = spawn(spark.sparkClass, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => output.push(d.toString()));
    children.push(child);
  };
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [port, webui] = [await freePort(), await freePort()];
    launch(['org.apache.spark.deploy.master.Master', '--host', '127.0.0.1', '--port', String(port), '--webui-port', String(webui)]);
    const masterUrl = `spark://127.0.0.1:${port}`;
    for (let i = 0; i < workers; i++) {
      launch([
        'org.apache.spark.deploy.worker.Worker',
        masterUrl,
        '--host',
        '127.0.0.1',
        '--cores',
        String(coresPerWorker),
        '--memory',
        '1g',
        '--webui-port',
        String(await freePort()),
      ]);
    }
    const ready = await until(async () => {
      try {
        const state = (await (await fetch(`http://127.0.0.1:${webui}/json/`)).json()) as { workers?: { state: string }[] };
        return (state.workers ?? []).filter((w) => w.state === 'ALIVE').length >= workers;
      } catch {
        return false;
      }
    }, 90_000);
    if (!ready) throw new Error(`standalone cluster did not come up:\n${output.join('').slice(-4000)}`);
    return { masterUrl, pids: children.map((c) => c.pid!), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Pids of this process's children that run spark-submit (the applications this test file started). */
export function sparkSubmitChildren(): number[] {
  return childrenOf(process.pid, /SparkSubmit|spark-submit/);
}
