/**
 * "Several hosts on one machine" for tests: Linux network namespaces on a private bridge, and a Spark
 * standalone cluster spread across them (master in the root namespace, one worker per namespace).
 *
 * Everything is named after a per-run id and only what this module created is ever touched or
 * removed: by `remove()` / `stop()`, and synchronously when the process exits or is killed by
 * SIGINT/SIGTERM/SIGHUP (ava SIGTERMs its test worker on Ctrl-C and on timeouts, and a signal death
 * skips 'exit' handlers). Addresses come only from 198.18.0.0/15, the range reserved for benchmarking,
 * and nothing is forwarded beyond the bridge (the root namespace's ip_forward is left alone).
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { findSpark } from '../../src/spark/spark-home.js';
import { until } from './spark-harness.js';

/** One namespace standing in for a host. */
export interface Host {
  /** The namespace's name, `sps-<runid>-h<i>`. */
  name: string;
  /** Its IPv4 address on the bridge, 198.18.X.(10+i). */
  address: string;
}

/** Namespaces on a bridge, made by {@link createHosts}. */
export interface Hosts {
  /** Per-run id that every namespace and link name of this run contains. */
  runId: string;
  /** The bridge in the root namespace, `spsbr<runid>`. */
  bridge: string;
  /** The bridge's address: where the root namespace (the driver) is reachable from every host. */
  driverAddress: string;
  hosts: Host[];
  /**
   * Spawns `command args` inside the host's namespace (`ip netns exec`), with `opts.env` (default:
   * this process's environment). The child is tracked and killed by {@link Hosts.remove}.
   */
  exec(host: Host | string, command: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Kills every process in the namespaces, then deletes namespaces, veths and bridge. Idempotent. */
  remove(): Promise<void>;
}

/** A Spark standalone cluster across {@link Hosts}, made by {@link startStandaloneAcross}. */
export interface StandaloneAcross {
  /** `spark://<driverAddress>:<port>`. */
  masterUrl: string;
  /** `http://<driverAddress>:<port>` of the master's web UI (its JSON is at `/json/`). */
  masterWebUi: string;
  /** The hosts the master lists as ALIVE workers, in the order of `hosts.hosts`. */
  workerAddresses: string[];
  /** Stops master and workers (by pid, SIGTERM then SIGKILL) and removes their temp dir. Idempotent. */
  stop(): Promise<void>;
}

type Probe = { ok: true } | { ok: false; why: string };

const SUBNET_PREFIX = '198.18';
/** `ip netns exec <name>` bind-mounts the files in `/etc/netns/<name>/` over those in `/etc`. */
const ETC_NETNS = '/etc/netns';
/**
 * The namespaces' resolver: a nameserver on their own loopback, where nothing listens. JVMs look up
 * the PTR name of their SPARK_LOCAL_IP; with the host's nameserver behind the default route (which
 * leads nowhere, the root namespace does not forward) every lookup waits out 2 x 5 s, so each Spark
 * JVM started 10 s late. This way lookups fail at once and DNS traffic never leaves the namespace.
 */
const NAMESPACE_RESOLV_CONF = 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n';
/** Port the connectivity probe listens on inside each namespace (fresh namespaces: nothing else there). */
const PROBE_PORT = 47_001;
const execFileAsync = promisify(execFile);
/**
 * Where system tools (ip, iptables, nft) are looked up. Not PATH: under npm, PATH starts with
 * node_modules/.bin, which holds e.g. an unrelated `nft` (@vercel/nft).
 */
const SYSTEM_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Absolute path of a system tool, if installed. */
function systemTool(name: string): string | undefined {
  return SYSTEM_DIRS.map((d) => join(d, name)).find((p) => existsSync(p));
}

/** Bare names are system tools; paths stay as they are. */
function resolveCommand(command: string): string {
  return command.includes('/') ? command : (systemTool(command) ?? command);
}

// ---------------------------------------------------------------------------------------------------
// Commands

function commandError(command: string, args: string[], err: unknown): Error {
  const e = err as NodeJS.ErrnoException & { stderr?: string | Buffer };
  const stderr = String(e.stderr ?? '').trim();
  return new Error(`"${command} ${args.join(' ')}" failed: ${stderr || e.message}`);
}

/** Runs a command, resolves with its stdout; the error names the command and its stderr. */
async function run(command: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(resolveCommand(command), args, { encoding: 'utf8', timeout: 30_000 })).stdout;
  } catch (err) {
    throw commandError(command, args, err);
  }
}

/** {@link run} for the synchronous exit path. */
function runSync(command: string, args: string[]): string {
  try {
    return execFileSync(resolveCommand(command), args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw commandError(command, args, err);
  }
}

/** Runs every step even when some fail; the first failure is rethrown at the end. */
async function allSteps(steps: (() => Promise<unknown>)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) await step().catch((err: unknown) => errors.push(err));
  if (errors.length) throw errors[0];
}

function allStepsSync(steps: (() => unknown)[]): void {
  for (const step of steps) {
    try {
      step();
    } catch {
      // Best effort while exiting: keep removing the rest.
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Cleanup when the process ends without remove()/stop(): one shared registry, so many runs don't pile
// up listeners.

const exitCleanups = new Set<() => void>();
let exitHooksInstalled = false;

function runExitCleanups(): void {
  for (const cleanup of [...exitCleanups]) {
    exitCleanups.delete(cleanup);
    try {
      cleanup();
    } catch {
      // Best effort: the others must still run.
    }
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.once('exit', runExitCleanups);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      runExitCleanups();
      // Then die of the signal as if we had not listened, unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
  // A forked test worker (ava) whose parent died, e.g. by SIGTERM or SIGKILL, is not told so by a
  // signal and would run its test on, unobserved, for a minute: take the IPC disconnect as the end.
  if (process.send) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

/**
 * Runs `cleanup` (synchronous, best effort) if the process exits or is killed by SIGINT/SIGTERM/SIGHUP
 * before the returned unregister function is called. For test resources outside this module.
 */
export function onExitSync(cleanup: () => void): () => void {
  installExitHooks();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

/**
 * Kills `child` (SIGKILL, by pid) if this process exits while it still runs, for processes started
 * outside {@link Hosts.exec}, e.g. a spark-submit driver in the root namespace.
 */
export function killOnExit(child: ChildProcess): void {
  const unregister = onExitSync(() => killPid(child.pid, 'SIGKILL'));
  child.once('exit', unregister);
}

// ---------------------------------------------------------------------------------------------------
// Processes

function killPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** True once the pid is gone or a zombie (a zombie holds nothing; its parent reaps it). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** SIGTERM, then SIGKILL for what is left after `graceMs`; resolves once all are gone (bounded). */
async function terminate(pids: number[], graceMs = 10_000): Promise<void> {
  for (const pid of pids) killPid(pid, 'SIGTERM');
  if (await until(() => pids.every(gone), graceMs)) return;
  for (const pid of pids) if (!gone(pid)) killPid(pid, 'SIGKILL');
  await until(() => pids.every(gone), 5_000);
}

/** Keeps the last `max` characters a child printed, for error messages. */
function captureTail(child: ChildProcess, max = 6_000): () => string {
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-max);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Reads `child`'s stdout line by line from now on (lines are queued, so none is lost between calls):
 * `next` resolves with the next line, or rejects after `timeoutMs` or when the child exits first.
 */
function lineReader(child: ChildProcess): { next(timeoutMs: number, what: string): Promise<string> } {
  const queued: string[] = [];
  let waiter: ((line: string | undefined) => void) | undefined;
  let ended = false;
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => (waiter ? waiter(line) : queued.push(line)));
  lines.once('close', () => {
    ended = true;
    waiter?.(undefined);
  });
  return {
    next: (timeoutMs, what) =>
      new Promise((resolve, reject) => {
        if (queued.length) return resolve(queued.shift()!);
        if (ended) return reject(new Error(`${what}: output ended (exit ${child.exitCode ?? child.signalCode}) before answering`));
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = (line) => {
          clearTimeout(timer);
          waiter = undefined;
          if (line === undefined) reject(new Error(`${what}: output ended (exit ${child.exitCode ?? child.signalCode}) before answering`));
          else resolve(line);
        };
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Capability check

/**
 * Whether this process can make the namespaces {@link createHosts} needs: Linux, root, `ip`, and a
 * throwaway namespace with a bridge and a veth pair in it (all inside that namespace, deleted again).
 */
export async function canMakeNamespaces(): Promise<Probe> {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces need Linux, this is ${process.platform}` };
  const uid = process.getuid?.();
  if (uid !== 0) return { ok: false, why: `network namespaces need root, this runs as uid ${uid}` };
  if (!systemTool('ip')) return { ok: false, why: `"ip" (iproute2) is not installed (looked in ${SYSTEM_DIRS.join(', ')})` };
  const name = `sps-probe-${randomBytes(3).toString('hex')}`;
  try {
    await run('ip', ['netns', 'add', name]);
  } catch (err) {
    return { ok: false, why: `cannot create a network namespace: ${(err as Error).message}` };
  }
  try {
    // Inside the throwaway namespace, so the root namespace is not touched by the check.
    await run('ip', ['-n', name, 'link', 'add', 'spsprobebr', 'type', 'bridge']);
    await run('ip', ['-n', name, 'link', 'add', 'spsprobea', 'type', 'veth', 'peer', 'name', 'spsprobeb']);
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `cannot create bridge/veth links: ${(err as Error).message}` };
  } finally {
    await run('ip', ['netns', 'del', name]).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------
// Firewall

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** What of the host firewall could drop bridge traffic, for error messages. */
function describeFirewall(): string {
  const facts = [`net.bridge.bridge-nf-call-iptables=${readProc('/proc/sys/net/bridge/bridge-nf-call-iptables') ?? 'absent (br_netfilter not loaded)'}`];
  const iptables = systemTool('iptables');
  if (iptables) {
    for (const chain of ['INPUT', 'FORWARD', 'OUTPUT']) {
      try {
        facts.push(`iptables ${chain}: ${runSync(iptables, ['-w', '-S', chain]).trim().replace(/\n/g, ' | ')}`);
      } catch (err) {
        facts.push((err as Error).message);
      }
    }
  } else facts.push('no iptables installed');
  const nft = systemTool('nft');
  if (nft) {
    try {
      const hooks = runSync(nft, ['list', 'ruleset'])
        .split('\n')
        .filter((l) => /hook (input|forward|output)/.test(l));
      facts.push(`nft base chains: ${hooks.map((l) => l.trim()).join(' | ') || 'none'}`);
    } catch (err) {
      facts.push((err as Error).message);
    }
  } else facts.push('no nft installed');
  return facts.join('; ');
}

/**
 * If iptables filters a chain the bridge traffic crosses (a non-ACCEPT policy or any rule), puts an
 * ACCEPT for this bridge only at the top of it. Returns the rules to delete again. FORWARD is only
 * crossed by bridged (namespace to namespace) packets when br_netfilter hands them to iptables.
 * nftables rulesets are left alone (an accept in our own table cannot override another table's drop);
 * the connectivity probe reports them if they block.
 */
async function openFirewall(bridge: string, runId: string): Promise<string[][]> {
  const iptables = systemTool('iptables');
  if (!iptables) return [];
  const bridged = readProc('/proc/sys/net/bridge/bridge-nf-call-iptables') === '1';
  const wanted: [string, string[]][] = [
    ['INPUT', ['-i', bridge]],
    ['OUTPUT', ['-o', bridge]],
    ...(bridged ? [['FORWARD', ['-i', bridge, '-o', bridge]] as [string, string[]]] : []),
  ];
  const added: string[][] = [];
  for (const [chain, match] of wanted) {
    const rules = await run(iptables, ['-w', '-S', chain]);
    const filters = !rules.includes(`-P ${chain} ACCEPT`) || rules.includes(`-A ${chain} `);
    if (!filters) continue;
    const rule = [chain, ...match, '-m', 'comment', '--comment', `sps-netns-${runId}`, '-j', 'ACCEPT'];
    await run(iptables, ['-w', '-I', ...rule]);
    added.push(rule);
  }
  return added;
}

// ---------------------------------------------------------------------------------------------------
// Hosts

/** A /24 in 198.18.0.0/16 that no address or route of this machine uses yet. */
async function pickSubnet(): Promise<number> {
  const used = (await run('ip', ['-4', '-o', 'addr', 'show'])) + (await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all']));
  for (let tries = 0; tries < 100; tries++) {
    const x = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`${SUBNET_PREFIX}.${x}.`)) return x;
  }
  throw new Error(`no free /24 found in ${SUBNET_PREFIX}.0.0/16`);
}

/** Everything created so far, so a half-made setup is removed just as well as a whole one. */
interface Made {
  bridge?: string;
  namespaces: string[];
  veths: string[];
  iptablesRules: string[][];
  /** `/etc/netns/<name>` folders, and whether `/etc/netns` itself was made by us. */
  etcDirs: string[];
  madeEtcNetns: boolean;
  children: Set<ChildProcess>;
}

function namespacePidsSync(namespace: string): number[] {
  try {
    return runSync('ip', ['netns', 'pids', namespace]).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function namespacePids(namespace: string): Promise<number[]> {
  try {
    return (await run('ip', ['netns', 'pids', namespace])).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Link, namespace and firewall removal in dependency order (processes must be gone already). */
function removalSteps(made: Made): [string, string[]][] {
  const iptables = systemTool('iptables') ?? 'iptables';
  return [
    ...made.veths.map((v): [string, string[]] => ['ip', ['link', 'del', v]]),
    ...made.namespaces.map((n): [string, string[]] => ['ip', ['netns', 'del', n]]),
    ...(made.bridge ? [['ip', ['link', 'del', made.bridge]] as [string, string[]]] : []),
    ...made.iptablesRules.map((r): [string, string[]] => [iptables, ['-w', '-D', ...r]]),
  ];
}

/** A deleted namespace also deletes its veth end, and with it our root end: not an error then. */
function isAlreadyGone(err: unknown): boolean {
  return /Cannot find device|No such file|does not exist/i.test((err as Error).message);
}

/** Removes our `/etc/netns/<name>` folders, and `/etc/netns` if we made it and it is empty now. */
function removeEtcDirs(made: Made): void {
  for (const dir of made.etcDirs) rmSync(dir, { recursive: true, force: true });
  if (!made.madeEtcNetns) return;
  try {
    rmdirSync(ETC_NETNS);
  } catch {
    // Not empty: another run's namespaces use it now.
  }
}

async function removeMade(made: Made): Promise<void> {
  const pids = [...made.children].map((c) => c.pid).filter((p): p is number => p !== undefined);
  for (const n of made.namespaces) pids.push(...(await namespacePids(n)));
  await terminate([...new Set(pids)]);
  await allSteps(
    removalSteps(made).map(
      ([cmd, args]) =>
        () =>
          run(cmd, args).catch((err: unknown) => {
            if (!isAlreadyGone(err)) throw err;
          }),
    ),
  );
  removeEtcDirs(made);
}

function removeMadeSync(made: Made): void {
  const pids = [...made.children].map((c) => c.pid);
  for (const n of made.namespaces) pids.push(...namespacePidsSync(n));
  for (const pid of pids) killPid(pid, 'SIGKILL');
  allStepsSync(
    removalSteps(made).map(
      ([cmd, args]) =>
        () =>
          runSync(cmd, args),
    ),
  );
  allStepsSync([() => removeEtcDirs(made)]);
}

/** Bridge in the root namespace with the driver address. */
async function makeBridge(made: Made, bridge: string, driverAddress: string): Promise<void> {
  await run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
  made.bridge = bridge;
  await run('ip', ['addr', 'add', `${driverAddress}/24`, 'dev', bridge]);
  await run('ip', ['link', 'set', bridge, 'up']);
}

/** One namespace: veth to the bridge (the peer created directly inside, as eth0), lo, default route. */
async function makeHost(made: Made, host: Host, veth: string, bridge: string, driverAddress: string): Promise<void> {
  await run('ip', ['netns', 'add', host.name]);
  made.namespaces.push(host.name);
  if (!existsSync(ETC_NETNS)) {
    mkdirSync(ETC_NETNS);
    made.madeEtcNetns = true;
  }
  const etcDir = join(ETC_NETNS, host.name);
  mkdirSync(etcDir);
  made.etcDirs.push(etcDir);
  writeFileSync(join(etcDir, 'resolv.conf'), NAMESPACE_RESOLV_CONF);
  await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
  made.veths.push(veth);
  await run('ip', ['link', 'set', veth, 'master', bridge, 'up']);
  const inNs = (...args: string[]): Promise<string> => run('ip', ['-n', host.name, ...args]);
  await inNs('link', 'set', 'lo', 'up');
  await inNs('addr', 'add', `${host.address}/24`, 'dev', 'eth0');
  await inNs('link', 'set', 'eth0', 'up');
  await inNs('route', 'add', 'default', 'via', driverAddress);
}

/** Guards against a concurrent run that picked the same /24 at the same moment. */
async function checkSubnetIsOurs(subnet: string, bridge: string): Promise<void> {
  const routes = (await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all', 'root', `${subnet}.0/24`])).split('\n').filter(Boolean);
  const foreign = routes.filter((l) => !new RegExp(`\\bdev ${bridge}\\b`).test(l));
  if (foreign.length) throw new Error(`${subnet}.0/24 is also routed elsewhere: ${foreign.join(' | ')}`);
}

/** Script run by node in each namespace: listen, then on "go" connect to the targets and report. */
const PROBE_SCRIPT = `
const net = require('node:net');
const [own, port, ...targets] = process.argv.slice(1);
const server = net.createServer((s) => s.end());
server.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
server.listen(Number(port), own, () => console.log('listening'));
const attempt = (target) => new Promise((resolve) => {
  const i = target.lastIndexOf(':');
  const s = net.connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)), timeout: 3000 });
  s.once('connect', () => { s.destroy(); resolve('ok'); });
  s.once('timeout', () => { s.destroy(); resolve('timed out'); });
  s.once('error', (e) => resolve(e.code || e.message));
});
process.stdin.once('data', async () => {
  const out = {};
  for (const t of targets) out[t] = await attempt(t);
  console.log(JSON.stringify(out));
});
process.stdin.once('end', () => process.exit(0));
`;

function tcpReachable(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 3000 });
    s.once('connect', () => {
      s.destroy();
      resolve('ok');
    });
    s.once('timeout', () => {
      s.destroy();
      resolve('timed out');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
}

/**
 * TCP from every namespace to the driver address and to every other namespace, and from the root
 * namespace to every namespace: what Spark needs. Throws naming each failed path and the firewall state.
 */
async function checkConnectivity(hosts: Omit<Hosts, 'remove'>): Promise<void> {
  const server = createServer((s) => s.end());
  const driverPort = await listen(server, 0, hosts.driverAddress);
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the probe is plain CommonJS; loaders of the test process don't belong there
  const probes = hosts.hosts.map((h) => {
    const targets = [`${hosts.driverAddress}:${driverPort}`, ...hosts.hosts.filter((o) => o !== h).map((o) => `${o.address}:${PROBE_PORT}`)];
    const child = hosts.exec(h, process.execPath, ['-e', PROBE_SCRIPT, h.address, String(PROBE_PORT), ...targets], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    return { host: h, child, tail: captureTail(child), lines: lineReader(child) };
  });
  const failures: string[] = [];
  try {
    for (const p of probes) {
      const line = await p.lines.next(15_000, `connectivity probe in ${p.host.name}`).catch((err: Error) => `${err.message}: ${p.tail()}`);
      if (line !== 'listening') throw new Error(`connectivity probe in ${p.host.name} did not start: ${line}`);
    }
    for (const p of probes) {
      p.child.stdin!.write('go\n');
      const answer = await p.lines.next(20_000, `connectivity probe in ${p.host.name}`);
      for (const [target, result] of Object.entries(JSON.parse(answer) as Record<string, string>)) {
        if (result !== 'ok') failures.push(`${p.host.name} (${p.host.address}) -> ${target}: ${result}`);
      }
    }
    for (const h of hosts.hosts) {
      const result = await tcpReachable(h.address, PROBE_PORT);
      if (result !== 'ok') failures.push(`root namespace -> ${h.address}:${PROBE_PORT}: ${result}`);
    }
  } finally {
    for (const p of probes) p.child.stdin!.end();
    server.close();
    await Promise.all(probes.map((p) => (exited(p.child) ? Promise.resolve() : new Promise<void>((r) => p.child.once('exit', () => r())))));
  }
  if (failures.length) {
    throw new Error(`namespaces on bridge ${hosts.bridge} cannot reach each other or the driver: ${failures.join('; ')}. Firewall: ${describeFirewall()}`);
  }
}

/**
 * Makes `count` network namespaces `sps-<runid>-h<i>` on a fresh bridge `spsbr<runid>`: the bridge has
 * 198.18.X.1/24 (the driver address), namespace i has 198.18.X.(10+i)/24 on eth0, lo up and a default
 * route via the bridge. Checks over TCP that namespaces reach the driver and each other and the root
 * namespace reaches them. On any failure everything made so far is removed again.
 */
export async function createHosts(count: number): Promise<Hosts> {
  if (!Number.isInteger(count) || count < 1 || count > 200) throw new RangeError(`createHosts: count must be 1..200, got ${count}`);
  const runId = randomBytes(3).toString('hex');
  const subnet = `${SUBNET_PREFIX}.${await pickSubnet()}`;
  const bridge = `spsbr${runId}`;
  const driverAddress = `${subnet}.1`;
  const hostList: Host[] = Array.from({ length: count }, (_, i) => ({ name: `sps-${runId}-h${i}`, address: `${subnet}.${10 + i}` }));
  const made: Made = { namespaces: [], veths: [], iptablesRules: [], etcDirs: [], madeEtcNetns: false, children: new Set() };
  const unregister = onExitSync(() => removeMadeSync(made));
  let removal: Promise<void> | undefined;
  const remove = (): Promise<void> => (removal ??= removeMade(made).finally(unregister));

  const exec = (host: Host | string, command: string, args: string[], opts: SpawnOptions = {}): ChildProcess => {
    const h = hostList.find((x) => x === host || x.name === host || x.address === host);
    if (!h) throw new Error(`exec: ${String(typeof host === 'string' ? host : host.name)} is not one of ${hostList.map((x) => x.name).join(', ')}`);
    if (removal) throw new Error(`exec in ${h.name}: the hosts were removed`);
    const child = spawn(resolveCommand('ip'), ['netns', 'exec', h.name, command, ...args], { ...opts, env: opts.env ?? process.env });
    made.children.add(child);
    child.once('exit', () => made.children.delete(child));
    return child;
  };

  const hosts: Hosts = { runId, bridge, driverAddress, hosts: hostList, exec, remove };
  try {
    await makeBridge(made, bridge, driverAddress);
    await checkSubnetIsOurs(subnet, bridge);
    for (const [i, h] of hostList.entries()) await makeHost(made, h, `spsv${runId}h${i}`, bridge, driverAddress);
    made.iptablesRules = await openFirewall(bridge, runId);
    await checkConnectivity(hosts);
    return hosts;
  } catch (err) {
    await remove().catch(() => {});
    throw err;
  }
}

/**
 * Names of namespaces and links of run `runId` that still exist (empty after a clean removal).
 * Lists only; never changes anything.
 */
export async function leftovers(runId: string): Promise<string[]> {
  const namespaces = (await run('ip', ['netns', 'list']))
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.includes(runId));
  const links = (await run('ip', ['-o', 'link', 'show']))
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
    .filter((n) => n.includes(runId));
  return [...namespaces.map((n) => `netns ${n}`), ...links.map((l) => `link ${l}`)];
}

// ---------------------------------------------------------------------------------------------------
// Spark standalone across the hosts

/** A port nothing listens on at `address` right now (checked where the master will bind it). */
async function freePortOn(address: string): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0, address);
  await new Promise((r) => server.close(r));
  return port;
}

interface MasterState {
  workers?: { host: string; state: string }[];
}

async function masterState(webUi: string): Promise<MasterState | undefined> {
  try {
    return (await (await fetch(`${webUi}/json/`, { signal: AbortSignal.timeout(3_000) })).json()) as MasterState;
  } catch {
    return undefined;
  }
}

/**
 * Starts a Spark standalone master in the root namespace bound to `hosts.driverAddress`, and one
 * worker per host inside its namespace (`SPARK_LOCAL_IP` and `--host` = the host's address, own
 * work/log dirs in a temp dir, `SPARK_DAEMON_MEMORY=256m`). Resolves once the master's JSON lists every
 * host as an ALIVE worker (150 s at most, as JVMs start slowly on a loaded machine; the error shows
 * each process's output tail).
 */
export async function startStandaloneAcross(
  hosts: Hosts,
  opts: {
    coresPerWorker: number;
    memory?: string;
    /** Given the stop function before any daemon starts: a caller whose hook times out mid-start still stops them. */
    started?: (stop: () => Promise<void>) => void;
  },
): Promise<StandaloneAcross> {
  const spark = findSpark();
  const dir = mkdtempSync(join(tmpdir(), `sps-netns-${hosts.runId}-`));
  const env = { ...process.env, SPARK_HOME: spark.home, PYSPARK_PYTHON: spark.python, SPARK_DAEMON_MEMORY: '256m' };
  const procs: { label: string; child: ChildProcess; tail: () => string }[] = [];
  const track = (label: string, child: ChildProcess): void => {
    procs.push({ label, child, tail: captureTail(child) });
  };
  const unregister = onExitSync(() => {
    for (const p of procs) killPid(p.child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(procs.map((p) => p.child.pid).filter((p): p is number => p !== undefined));
      rmSync(dir, { recursive: true, force: true });
      unregister();
    })());
  opts.started?.(stop);
  const report = (): string =>
    procs.map((p) => `--- ${p.label} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}):\n${p.tail().slice(-3_000)}`).join('\n');

  try {
    const driver = hosts.driverAddress;
    const [port, webPort] = [await freePortOn(driver), await freePortOn(driver)];
    const masterUrl = `spark://${driver}:${port}`;
    const masterWebUi = `http://${driver}:${webPort}`;
    const master = spawn(
      spark.sparkClass,
      ['org.apache.spark.deploy.master.Master', '--host', driver, '--port', String(port), '--webui-port', String(webPort)],
      {
        env: { ...env, SPARK_LOCAL_IP: driver, SPARK_LOG_DIR: join(dir, 'master', 'logs') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    track('master', master);
    // Workers that come before the master retry only after 5-15 s: wait for its port first.
    const masterUp = await until(async () => exited(master) || (await tcpReachable(driver, port)) === 'ok', 150_000);
    if (!masterUp || exited(master)) throw new Error(`Spark master on ${masterUrl} did not come up:\n${report()}`);

    for (const h of hosts.hosts) {
      const workerDir = join(dir, h.name);
      // Port 0 (any) for RPC and web UI: the namespace is fresh and ours, every port is free there.
      const child = hosts.exec(
        h,
        spark.sparkClass,
        [
          'org.apache.spark.deploy.worker.Worker',
          masterUrl,
          '--host',
          h.address,
          '--port',
          '0',
          '--webui-port',
          '0',
          '--cores',
          String(opts.coresPerWorker),
          '--memory',
          opts.memory ?? '1g',
        ],
        {
          env: { ...env, SPARK_LOCAL_IP: h.address, SPARK_WORKER_DIR: join(workerDir, 'work'), SPARK_LOG_DIR: join(workerDir, 'logs') },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      track(`worker ${h.name} (${h.address})`, child);
    }

    const wanted = hosts.hosts.map((h) => h.address);
    let alive: string[] = [];
    const ready = await until(async () => {
      if (procs.some((p) => exited(p.child))) return true;
      const state = await masterState(masterWebUi);
      alive = (state?.workers ?? []).filter((w) => w.state === 'ALIVE').map((w) => w.host);
      return wanted.every((a) => alive.includes(a));
    }, 150_000);
    if (!ready || procs.some((p) => exited(p.child))) {
      throw new Error(`Spark workers did not all register as ALIVE with ${masterUrl} (alive: ${alive.join(', ') || 'none'}):\n${report()}`);
    }
    return { masterUrl, masterWebUi, workerAddresses: wanted.filter((a) => alive.includes(a)), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
