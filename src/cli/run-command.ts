/**
 * `sps run`: starts a cluster, shows its progress, writes the client credentials for `sps status`
 * and `sps request`, runs until Ctrl-C, SIGTERM, `--for`, or the cluster failing, then stops it and
 * prints each partition's result records on stdout as JSON lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../driver/cluster.js';
import { ClusterStateError, InvalidOptionError } from '../errors.js';
import type { BusAccess } from '../security/bus-access.js';
import { writeCredentialsFile } from '../driver/credentials-file.js';
import { clusterOptions, usageOf, type RunFlags } from './run-options.js';
import { attachView } from './run-view.js';

/** `sps run`'s flags beyond the cluster's options. */
export interface RunCommandFlags extends RunFlags {
  /** How long to run once every partition serves (ms); default: until a signal. */
  for?: number;
  credentialsFile?: string;
  progress: 'auto' | 'bar' | 'json';
  /** Serve the dashboard: `true` on a free port, or this port. */
  dashboard?: true | number;
  dashboardHost?: string;
}

/**
 * Opens the dashboard once the run exists (its token does) and says where. The URL carries the
 * cluster's token, so it is shown only on a terminal; JSON lines (often kept in logs) get the
 * address without it and a private file (mode 0600, removed at exit) that holds the whole URL.
 */
function openDashboardOnStart(cluster: Cluster, flags: RunCommandFlags, view: ReturnType<typeof attachView>, mode: 'bar' | 'json'): () => void {
  if (flags.dashboard === undefined) return () => {};
  let dir: string | undefined;
  cluster.on('state', (e) => {
    if (e.state !== 'starting') return;
    const port = flags.dashboard === true ? 0 : flags.dashboard;
    cluster.dashboard({ port, host: flags.dashboardHost }).then(
      (d) => {
        if (mode === 'bar') {
          view.note('dashboard', `dashboard: ${d.url}`);
          return;
        }
        dir ??= mkdtempSync(join(tmpdir(), 'sps-dashboard-'));
        const urlFile = join(dir, 'url');
        writeFileSync(urlFile, `${d.url}\n`, { mode: 0o600 });
        view.note('dashboard', '', { url: d.url.slice(0, d.url.indexOf('?')), urlFile });
      },
      (err: unknown) => view.note('error', `dashboard: ${(err as Error).message}`, { code: (err as { code?: string }).code, message: (err as Error).message }),
    );
  });
  return () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}

/** Where the client credentials go: the given file, or a private folder of its own (mode 0700) removed at exit. */
function credentialsTarget(given: string | undefined): { path: string; remove: () => void } {
  if (given !== undefined) return { path: given, remove: () => rmSync(given, { force: true }) };
  const dir = mkdtempSync(join(tmpdir(), 'sps-cli-'));
  return { path: join(dir, 'credentials.json'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The exit code of a run a signal interrupted before it served: 128 + the signal's number. */
export function interruptedExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/** Runs the cluster; resolves with the exit code. */
export async function runCommand(flags: RunCommandFlags): Promise<number> {
  const mode = flags.progress === 'auto' ? (process.stderr.isTTY ? 'bar' : 'json') : flags.progress;
  // Worker lines go to the view once it exists (workers start only after it does).
  let forward = (line: string): void => void process.stderr.write(`${line}\n`);
  let cluster: Cluster;
  try {
    cluster = new Cluster(clusterOptions(flags, (line) => forward(line)));
  } catch (err) {
    if (err instanceof InvalidOptionError) throw usageOf(err);
    throw err;
  }
  const view = attachView(cluster, mode);
  forward = view.log;
  const removeDashboardFile = openDashboardOnStart(cluster, flags, view, mode);
  const abort = new AbortController();
  let stopNow!: () => void;
  const stopSignal = new Promise<void>((resolve) => (stopNow = resolve));
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    view.note('signal', `${signal}: stopping`, { signal });
    abort.abort(new ClusterStateError(`interrupted by ${signal}`));
    stopNow();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  cluster.on('state', (e) => {
    if (e.state === 'failed') stopNow();
  });
  let credentials: { path: string; remove: () => void } | undefined;
  try {
    await cluster.start({ signal: abort.signal });
    const id = cluster.id!;
    let access: BusAccess;
    try {
      access = cluster.credentials('client');
    } catch {
      // A NATS server of the user's (--nats): its users are its operator's; only the address is written.
      access = { url: cluster.natsUrl! };
    }
    credentials = credentialsTarget(flags.credentialsFile);
    writeCredentialsFile(credentials.path, { clusterId: id, ...access });
    const members = cluster.members.map(({ partition, attempt, host, port, pid, state }) => ({ partition, attempt, host, port, pid, state }));
    view.note(
      'running',
      [
        `cluster ${id} running on ${cluster.natsUrl}; client credentials in ${credentials.path}`,
        ...members.map((m) => `  partition ${m.partition} attempt ${m.attempt} pid ${m.pid} ${m.port === null ? 'NATS only' : `http://${m.host}:${m.port}`}`),
        `  sps status --credentials-file ${credentials.path}`,
      ].join('\n'),
      { clusterId: id, natsUrl: cluster.natsUrl, credentialsFile: credentials.path, members },
    );
    if (flags.for !== undefined) setTimeout(stopNow, flags.for).unref();
    await stopSignal;
    view.note('stopping', 'stopping', {});
    let failure: unknown;
    await cluster.stop().catch((err: unknown) => (failure = err));
    // What the partitions returned is printed even when the run failed: stop() still collected it.
    const results = [...cluster.result()].sort(([a], [b]) => a - b);
    view.note('stopped', 'stopped', { records: results.reduce((n, [, rows]) => n + rows.length, 0) });
    // The bar ends first, so the records do not interleave with it when stdout is the same terminal.
    view.close();
    for (const [partition, rows] of results) {
      for (const record of rows) process.stdout.write(JSON.stringify({ partition, record }) + '\n');
    }
    if (failure !== undefined) throw failure;
    return 0;
  } catch (err) {
    await cluster.stop().catch(() => {});
    const e = err as Error & { code?: string };
    view.note('error', `${e.code ? `[${e.code}] ` : ''}${e.message}`, { code: e.code, message: e.message });
    // Interrupted before every partition served: the shell's convention for a command a signal
    // ended (130 for Ctrl-C, 143 for SIGTERM), as when the signal comes before sps handles it.
    return interrupted ? interruptedExitCode(interrupted) : 1;
  } finally {
    credentials?.remove();
    removeDashboardFile();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cluster.stop().catch(() => {});
    view.close();
  }
}
