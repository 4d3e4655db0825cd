import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { startNatsServer, type NatsServerProcess } from '../../src/transport/nats-server.js';

/** The fixture server module most tests run. */
export const TEST_SERVER = new URL('../fixtures/test-server.ts', import.meta.url);

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls `check` every 50 ms until it is true or `timeoutMs` passes (bounded). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Starts a nats-server shared by the tests of one file; stop it in `test.after.always`. */
export function sharedNats(): { get(): Promise<NatsServerProcess>; stop(): Promise<void> } {
  let server: Promise<NatsServerProcess> | undefined;
  return {
    get: () => (server ??= startNatsServer()),
    stop: async () => {
      if (server) await (await server).stop();
    },
  };
}

/** The first line a child process writes to stdout (a driver fixture's report); rejects if it exits first. */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`driver exited early with ${code}`)));
  });
}

/** The parent pid of a process (0 when it is gone). */
export function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The parent pid follows the state, after the command name in parentheses (which may hold spaces).
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** The nearest ancestor of a process whose command line matches `pattern`, if any. */
export function ancestorMatching(pid: number, pattern: RegExp): number | undefined {
  for (let p = parentOf(pid); p > 1; p = parentOf(p)) {
    try {
      if (pattern.test(readFileSync(`/proc/${p}/cmdline`, 'latin1'))) return p;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Pids of a process's children whose command line matches `pattern` (any, by default). */
export function childrenOf(pid: number, pattern = /./): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (parentOf(Number(entry)) !== pid) continue;
      if (pattern.test(readFileSync(`/proc/${entry}/cmdline`, 'latin1'))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** An nkey seed (user, account or operator): `S` + type + 56 base32 characters. */
const NKEY_SEED = /\bS[UAO][A-Z2-7]{56}\b/;

/**
 * What of the given secrets (by name) appears in `text`, plus `nkey seed` when anything shaped
 * like an nkey seed does: logs, errors and output must never hold one.
 */
export function secretsIn(text: string, secrets: Record<string, string | undefined>): string[] {
  const found = Object.entries(secrets)
    .filter(([, v]) => v && text.includes(v))
    .map(([k]) => k);
  if (NKEY_SEED.test(text)) found.push('nkey seed');
  return found;
}
