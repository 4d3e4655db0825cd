import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sparkEnv, sparkSubmit } from './spark.js';
import { startChild, waitForOutput, type ChildHandle } from './proc.js';

/** What spark/shape_bench.py prints. */
export interface SparkShapeOut {
  spark_version: string;
  context_ms: number;
  app_up_ms: number;
  first_job_ms: number;
  jobs: Record<string, { tasks_launched_ms: number[]; job_done_ms: number[] }>;
  load: { small: number[]; '1kb': number[] };
  stop_ms: number;
}

/** Settings of a shape run. */
export interface ShapeSettings {
  sizes: number[];
  reps: number;
  loadRows: number;
  loadParts: number;
}

const memo = new Map<string, Promise<SparkShapeOut>>();

/** Runs shape_bench.py once per master and settings (memoized: benchmarks 3 and 4 share a run). */
export function sparkShape(master: string, s: ShapeSettings): Promise<SparkShapeOut> {
  const key = `${master} ${JSON.stringify(s)}`;
  let p = memo.get(key);
  if (!p) {
    p = sparkSubmit<SparkShapeOut>('shape_bench.py', master, [Date.now(), s.sizes.join(','), s.reps, s.loadRows, s.loadParts], 300_000).then((r) => r.out);
    memo.set(key, p);
  }
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A Spark standalone master and one worker on loopback. */
export interface Standalone {
  url: string;
  /** Time from spawning the master to the worker registered, ms. */
  upMs: number;
  stop(): Promise<void>;
}

/** Starts a standalone master and a worker with `cores` cores; stop() ends both and removes their work dir. */
export async function startStandalone(cores: number): Promise<Standalone> {
  const sparkClass = `${ROOT}.venv/bin/spark-class`;
  const workDir = await mkdtemp(join(tmpdir(), 'sps-bench-spark-'));
  const env = { ...sparkEnv(), SPARK_WORKER_DIR: workDir, SPARK_NO_DAEMONIZE: '1' };
  const handles: ChildHandle[] = [];
  const stop = async (): Promise<void> => {
    for (const h of handles.reverse()) await h.stop();
    await rm(workDir, { recursive: true, force: true });
  };
  const t0 = performance.now();
  try {
    const port = await freePort();
    const master = startChild(
      sparkClass,
      ['org.apache.spark.deploy.master.Master', '--host', '127.0.0.1', '--port', String(port), '--webui-port', String(await freePort())],
      env,
    );
    handles.push(master);
    await waitForOutput(master, /I have been elected leader|ALIVE/, 60_000, true);
    const url = `spark://127.0.0.1:${port}`;
    const worker = startChild(
      sparkClass,
      [
        'org.apache.spark.deploy.worker.Worker',
        '--host',
        '127.0.0.1',
        '--cores',
        String(cores),
        '--memory',
        '4g',
        '--webui-port',
        String(await freePort()),
        '--work-dir',
        workDir,
        url,
      ],
      env,
    );
    handles.push(worker);
    await waitForOutput(worker, /Successfully registered with master/, 60_000, true);
    return { url, upMs: performance.now() - t0, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
