import { spawn, type ChildProcess } from 'node:child_process';
import { stopProcess } from '../../src/process/stop-process.js';

/** A child process of a benchmark, stopped by {@link ChildHandle.stop}. */
export interface ChildHandle {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

/** Spawns a command with piped output that is collected (tail-limited) for inspection. */
export function startChild(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): ChildHandle {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out = (out + c).slice(-4_000_000)));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-200_000)));
  child.once('error', (e) => (err += `\nspawn error: ${e.message}`));
  return { child, stdout: () => out, stderr: () => err, stop: () => stopProcess(child, 5000) };
}

/** Waits until `match` finds something in the child's stdout (or stderr too); rejects on exit or timeout. */
export function waitForOutput(h: ChildHandle, match: RegExp, timeoutMs: number, alsoStderr = false): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const m = match.exec(alsoStderr ? `${h.stdout()}\n${h.stderr()}` : h.stdout());
      if (m) done(() => resolve(m));
    };
    const onExit = (): void => done(() => reject(new Error(`process exited before printing ${match}: ${h.stderr().slice(-2000)}`)));
    const timer = setTimeout(() => done(() => reject(new Error(`no ${match} within ${timeoutMs} ms: ${h.stderr().slice(-2000)}`))), timeoutMs);
    const done = (f: () => void): void => {
      clearTimeout(timer);
      h.child.stdout!.off('data', check);
      h.child.stderr!.off('data', check);
      h.child.off('exit', onExit);
      f();
    };
    h.child.stdout!.on('data', check);
    if (alsoStderr) h.child.stderr!.on('data', check);
    h.child.once('exit', onExit);
    check();
  });
}

/** Runs a command to completion (killed after `timeoutMs`) and returns its exit code and output. */
export async function runToEnd(
  command: string,
  args: string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const h = startChild(command, args, env);
  const exited = new Promise<number | null>((r) => h.child.once('close', (code) => r(code)));
  const timer = setTimeout(() => void h.stop(), timeoutMs);
  try {
    const code = await exited;
    return { code, stdout: h.stdout(), stderr: h.stderr() };
  } finally {
    clearTimeout(timer);
    await h.stop();
  }
}

/** A field of /proc/<pid>/status in bytes (Linux); NaN when unavailable. */
async function statusBytes(pid: number, field: 'VmRSS' | 'RssAnon'): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of a process in bytes, from /proc (Linux); NaN when unavailable. */
export function rssOf(pid: number): Promise<number> {
  return statusBytes(pid, 'VmRSS');
}

/**
 * The anonymous part of a process's resident set in bytes (heaps, stacks): its own memory. The
 * rest of the RSS is file pages (the Node binary's code and data above all), which every process
 * running the same binary shares.
 */
export function anonRssOf(pid: number): Promise<number> {
  return statusBytes(pid, 'RssAnon');
}
