/**
 * Runs the Python package's test scripts (test/helpers/pyspark) with the project's .venv, each in
 * its own process group, killed when the test ends first; a script prints its findings as one
 * `SPS-FINDINGS {json}` line.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPTS = fileURLToPath(new URL('./pyspark/', import.meta.url));
export const PYTHON = `${ROOT}.venv/bin/python`;
/** The folder of the scripts. */
export const SCRIPTS_DIR = SCRIPTS;

/** Starts the project's Python on `args` in its own process group, which is killed if the test ends first. */
export function spawnPython(t: ExecutionContext, args: string[], cwd = SCRIPTS, extraEnv: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  // Spark's Python workers run the same Python as the program (it has pyarrow and pandas, so Spark
  // runs Python UDFs through Arrow), as in a user's own environment.
  const env = { ...process.env, SPS_NODE_PACKAGE: ROOT, PYSPARK_PYTHON: PYTHON, ...extraEnv };
  const child = spawn(PYTHON, args, { cwd, env, stdio: 'pipe', detached: true });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  });
  return child;
}

/** Runs a script to its end and returns its findings (the `SPS-FINDINGS` line of its stdout). */
export function runScript(t: ExecutionContext, script: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>> {
  const child = spawnPython(t, [script], SCRIPTS, extraEnv);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-8000)));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('SPS-FINDINGS '));
      if (code !== 0 || !line) reject(new Error(`${script} exited with ${code}:\n${err}`));
      else resolve(JSON.parse(line.slice('SPS-FINDINGS '.length)) as Record<string, unknown>);
    });
  });
}

/** Scripts run in one session by {@link sharedSession}. */
export interface SharedSession {
  /** The findings of `script`'s `main(spark)`; rejects with its traceback, or when the session's process ends first. */
  findings(script: string): Promise<Record<string, unknown>>;
  /** Kills the session's process group if it still runs (for `test.after.always`). */
  stop(): void;
}

/**
 * Runs the `main(spark)` of each of `scripts` (test/helpers/pyspark modules) one after another in
 * one local session (shared_session.py), started at the first `findings` call.
 */
export function sharedSession(scripts: string[]): SharedSession {
  const pending = new Map(
    scripts.map((s) => {
      let resolve!: (v: Record<string, unknown>) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<Record<string, unknown>>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {});
      return [s, { promise, resolve, reject }] as const;
    }),
  );
  let child: ChildProcessWithoutNullStreams | undefined;
  const start = (): void => {
    const env = { ...process.env, SPS_NODE_PACKAGE: ROOT, PYSPARK_PYTHON: PYTHON };
    child = spawn(PYTHON, ['shared_session.py', ...scripts], { cwd: SCRIPTS, env, stdio: 'pipe', detached: true });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const m = /^SPS-FINDINGS (\S+) (.*)$/.exec(out.slice(0, nl));
        out = out.slice(nl + 1);
        const entry = m ? pending.get(m[1]!) : undefined;
        if (!entry) continue;
        const found = JSON.parse(m![2]!) as { ok?: Record<string, unknown>; error?: string };
        if (found.ok) entry.resolve(found.ok);
        else entry.reject(new Error(`${m![1]}.py failed in the shared session:\n${found.error}`));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-8000)));
    child.once('exit', (code) => {
      for (const [script, entry] of pending) entry.reject(new Error(`the shared session ended (${code}) before ${script}.py's findings:\n${err}`));
    });
  };
  return {
    findings(script) {
      const entry = pending.get(script);
      if (!entry) throw new Error(`${script} is not one of the shared session's scripts (${scripts.join(', ')})`);
      if (!child) start();
      return entry.promise;
    },
    stop() {
      if (child && child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    },
  };
}

/** The first `${prefix} {json}` line `child` prints; rejects if it exits first. */
export function lineOf<T>(child: ChildProcess, prefix: string, what: string): Promise<T> {
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-8000)));
  return new Promise<T>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const line = out.split('\n').find((l) => l.startsWith(`${prefix} `));
      if (line) resolve(JSON.parse(line.slice(prefix.length + 1)) as T);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it printed ${prefix}:\n${err}`)));
  });
}
