/**
 * Runs the Python package's test scripts (test/helpers/pyspark) with the project's .venv, each in
 * its own process group, killed when the test ends first; a script prints its findings as one
 * `SPS-FINDINGS {json}` line.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPTS = fileURLToPath(new URL('./pyspark/', import.meta.url));
export const PYTHON = `${ROOT}.venv/bin/python`;

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
