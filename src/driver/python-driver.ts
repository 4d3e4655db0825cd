/**
 * The Node side of the Python package's `Cluster` (python/spark_partition_server): started by the
 * user's Python process as its child, it runs a {@link Cluster} whose Spark application is hosted
 * by that process ({@link SparkApplication.attach}): the partitions are the tasks of a job in the
 * user's own SparkSession, run by the runner's code inside the Python process.
 *
 * The two talk JSON lines: orders on this process's stdin, answers and events on its stdout (logs
 * go to stderr). Secrets (the runner's and the client's bus access) travel only on this pipe. When
 * stdin ends — the Python process exited or was killed — this process ends everything it started.
 *
 * Orders (`op`) and answers (`t`):
 * - `attach {pid, maxFailures, conf, busHost?}` → `runner {appId, bus, jobDir, protocol}` (host the runner
 *   now), then `attached {slots}`;
 * - `start {server, config, options, source, partitions}` → `progress {done, total}`… then
 *   `started {id, client, hosts}`; options are ClusterOptions in snake_case;
 * - `runnerFailed {message}`: the Python process could not start the runner it was told to host;
 *   taken at once, even while `attach` waits, which then fails with `SPS_SPARK_START` and that message;
 * - `hosts` → `hosts {hosts}`; `members` → `members {members}`; `stop` → `stopped {results, dataset}`; `close` → `closed`;
 * - any order may be answered `error {code, message, option?}`.
 */
import { SparkPartitionServerError, InvalidOptionError, SparkError } from '../errors.js';
import { Cluster } from './cluster.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import type { ClusterOptions } from './options.js';
import { SparkApplication } from '../spark/spark-app.js';

/** Longest order line taken from the Python process (its options and config). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** ClusterOptions a Python caller may give (in snake_case); the rest are the session's or the package's own. */
const PYTHON_OPTIONS = [
  'partitions',
  'partitionBy',
  'name',
  'barrier',
  'cacheResult',
  'format',
  'longs',
  'collectiveTransport',
  'tls',
  'natsListen',
  'natsAdvertiseUrl',
  'natsServer',
  'bindHost',
  'advertiseHost',
  'env',
  'logLevel',
  'startTimeoutMs',
  'registerTimeoutMs',
  'submitTimeoutMs',
  'stopTimeoutMs',
  'requestTimeoutMs',
  'heartbeatMs',
  'hangTimeoutMs',
  'driverTimeoutMs',
  'reconnectWindowMs',
] as const satisfies readonly (keyof ClusterOptions)[];

/** Why some ClusterOptions cannot be given from Python. */
const NOT_FROM_PYTHON: Partial<Record<keyof ClusterOptions, string>> = {
  maxFailures: "is the session's own (spark.task.maxFailures, or F of a local[N,F] master)",
  master: 'is the session given to Cluster',
  spark: 'is the session given to Cluster',
  sparkConf: "is the session's own configuration",
  sparkHome: "is the session's own",
  source: 'is the DataFrame or RDD given to Cluster',
  data: 'is the DataFrame or RDD given to Cluster',
  server: 'is the server path given to Cluster',
};

/** `cache_result` → `cacheResult`. */
function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `cacheResult` → `cache_result`, for errors that name what the Python caller wrote. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The Python caller's options as ClusterOptions; an unknown or session-owned one is named in snake_case. */
export function pythonOptions(given: Record<string, unknown>): Partial<ClusterOptions> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) {
    const name = camel(key);
    const notFromPython = NOT_FROM_PYTHON[name as keyof ClusterOptions];
    if (notFromPython) throw new InvalidOptionError(key, `cannot be given from Python: it ${notFromPython}`);
    if (!(PYTHON_OPTIONS as readonly string[]).includes(name)) {
      throw new InvalidOptionError(key, `is not an option of Cluster; known: ${PYTHON_OPTIONS.map(snake).join(', ')}`);
    }
    out[name] = value;
  }
  return out as Partial<ClusterOptions>;
}

/** What an order failed with, as the Python side raises it. */
function errorLine(err: unknown): Record<string, unknown> {
  if (err instanceof InvalidOptionError) {
    const option = snake(err.option);
    return { t: 'error', code: err.code, option, message: err.message.replace(`"${err.option}"`, `"${option}"`) };
  }
  if (err instanceof SparkPartitionServerError) return { t: 'error', code: err.code, message: err.message };
  return { t: 'error', code: 'SPS_PYTHON_DRIVER', message: err instanceof Error ? err.message : String(err) };
}

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Partition → `[host, port]`, as the seed's `get_hosts()`. */
function hostsOf(cluster: Cluster): Record<string, [string, number | null]> {
  return Object.fromEntries([...cluster.hosts].map(([p, h]) => [String(p), [h.host, h.port]]));
}

/** A cluster that tells its resolved request timeout, which Python's requests use too. */
class HostedCluster extends Cluster {
  get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }
}

/** One cluster at a time on the application the Python process hosts. */
class PythonDriver {
  private app?: SparkApplication;
  private cluster?: HostedCluster;
  /** Aborted when the Python process reports that the runner it hosts failed to start. */
  private readonly runnerStart = new AbortController();

  /** The runner the Python process hosts did not start: a pending `attach` fails with why. */
  runnerFailed(message: string): void {
    const reason = new SparkError('SPS_SPARK_START', `the Spark runner hosted by the Python process failed to start: ${message}`);
    if (this.app) process.stderr.write(`python driver: ${reason.message}\n`);
    else this.runnerStart.abort(reason);
  }

  async handle(order: Record<string, unknown>): Promise<void> {
    switch (order.op) {
      case 'attach':
        this.app = await SparkApplication.attach({
          pid: Number(order.pid),
          maxFailures: Number(order.maxFailures),
          conf: order.conf as Record<string, string>,
          ...(typeof order.busHost === 'string' ? { busHost: order.busHost } : {}),
          signal: this.runnerStart.signal,
          host: (runner) => send({ t: 'runner', ...runner }),
        });
        return send({ t: 'attached', slots: this.app.info.slots, master: this.app.info.master });
      case 'start':
        return this.start(order);
      case 'hosts':
        return send({ t: 'hosts', hosts: this.cluster ? hostsOf(this.cluster) : {} });
      case 'members':
        return send({ t: 'members', members: this.cluster?.members ?? [] });
      case 'stop':
        return this.stop();
      case 'close':
        await this.cluster?.stop().catch(() => {});
        await this.app?.close();
        send({ t: 'closed' });
        process.exit(0);
        return;
      default:
        throw new InvalidOptionError('op', `unknown order ${JSON.stringify(order.op)}`);
    }
  }

  private async start(order: Record<string, unknown>): Promise<void> {
    if (!this.app) throw new SparkPartitionServerError('SPS_PYTHON_DRIVER', 'start before attach');
    const options = pythonOptions((order.options ?? {}) as Record<string, unknown>);
    const cluster = new HostedCluster({
      // Records on stderr, which the Python side turns into its own log records; warnings by default.
      logger: createLogger((options.logLevel as LogLevel | undefined) ?? 'warn'),
      ...options,
      server: String(order.server),
      config: order.config,
      partitions: options.partitions ?? Number(order.partitions),
      spark: this.app,
      source: { session: String(order.source) },
    });
    this.cluster = cluster;
    cluster.on('progress', (p) => {
      if (p.phase === 'start') send({ t: 'progress', done: p.done, total: p.total });
    });
    await cluster.start();
    send({ t: 'started', id: cluster.id, client: cluster.credentials('client'), hosts: hostsOf(cluster), requestTimeoutMs: cluster.requestTimeoutMs });
  }

  private async stop(): Promise<void> {
    const cluster = this.cluster;
    if (!cluster) return send({ t: 'stopped', results: {}, dataset: null });
    let failure: unknown;
    await cluster.stop().catch((err: unknown) => (failure = err));
    const results = Object.fromEntries([...cluster.result()].map(([p, r]) => [String(p), r]));
    const dataset = cluster.resultDataset?.id ?? null;
    send({ t: 'stopped', results, dataset, ...(failure ? { error: errorLine(failure) } : {}) });
  }
}

/** Longest reason of a failed runner start taken into an error message. */
const MAX_REASON_CHARS = 4000;

/** An order line as an object, or undefined when it is not JSON (its handling then reports the error). */
function parseOrder(line: string): Record<string, unknown> | undefined {
  try {
    const order: unknown = JSON.parse(line);
    return order !== null && typeof order === 'object' ? (order as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads orders line by line, one at a time, until stdin ends; then everything started goes. */
function main(): void {
  const driver = new PythonDriver();
  let pending = '';
  let queue = Promise.resolve();
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_LINE_BYTES) {
      process.stderr.write(`python driver: an order line exceeds ${MAX_LINE_BYTES} bytes; ending\n`);
      process.exit(2);
    }
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines.filter((l) => l.trim() !== '')) {
      const order = parseOrder(line);
      // Not queued: it is what the pending `attach` waits for, failing or not.
      if (order?.op === 'runnerFailed') {
        driver.runnerFailed(String(order.message).slice(0, MAX_REASON_CHARS));
        continue;
      }
      queue = queue.then(async () => {
        try {
          await driver.handle(JSON.parse(line) as Record<string, unknown>);
        } catch (err) {
          send(errorLine(err));
        }
      });
    }
  });
  // The Python process is gone: the exit hooks of the cluster and the application kill the
  // workers' supervision, the nats-servers and everything else this process started.
  process.stdin.on('end', () => process.exit(1));
}

main();
