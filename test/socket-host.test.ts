/**
 * The partition host of Spark tasks (option `isolation: 'thread'`) on its own, without Spark: what
 * it does with connections that are not a well-formed attempt, and that it leaves when idle.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertBuiltFresh } from './helpers/built-cli.js';
import { until } from './helpers/spark-harness.js';

const WORKER = fileURLToPath(new URL('../dist/src/worker/worker.js', import.meta.url));

/** A socket host listening in a fresh private directory, leaving after `idleMs` without attempts. */
async function startHost(t: { teardown(fn: () => void): void }, idleMs: number): Promise<{ host: ChildProcess; socket: string; dir: string; log: string }> {
  assertBuiltFresh();
  const dir = mkdtempSync(join(tmpdir(), 'sps-socket-host-'));
  const socket = join(dir, 'run.sock');
  // Its output goes to its log, as the Spark runner starts it.
  const log = join(dir, 'run.host.log');
  const out = openSync(log, 'a');
  const host = spawn(process.execPath, [WORKER], {
    env: { ...process.env, SPS_PARTITION_HOST: '1', SPS_HOST_SOCKET: socket, SPS_HOST_IDLE_MS: String(idleMs), SPS_HOST_LOG: log },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  t.teardown(() => {
    host.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  if (!(await until(() => existsSync(socket), 20_000))) throw new Error('the host did not listen');
  return { host, socket, dir, log };
}

/** Connects, sends `line`, and resolves with all the host answered until it closed the connection. */
async function exchange(socket: string, line: string): Promise<string> {
  const conn: Socket = connect(socket);
  await once(conn, 'connect');
  let answer = '';
  conn.setEncoding('utf8');
  conn.on('data', (d: string) => (answer += d));
  conn.write(line);
  await once(conn, 'close');
  return answer;
}

test('a start whose channels are not FIFOs is answered with exit 1 and why; a line that is not JSON closes the connection', async (t) => {
  const { socket, dir } = await startHost(t, 60_000);
  const file = join(dir, 'plain');
  writeFileSync(file, '');
  const fifos = { rows: file, output: file, results: file, ticks: file };
  const answer = await exchange(socket, `${JSON.stringify({ t: 'start', env: {}, secrets: '{}', fifos })}\n`);
  const report = JSON.parse(answer.trim()) as { t: string; code: number; error: string };
  t.like(report, { t: 'exit', code: 1 });
  t.regex(report.error, /could not open the task's channels/);
  t.is(await exchange(socket, 'not json\n'), '');
  t.is(await exchange(socket, `${JSON.stringify({ t: 'kill' })}\n`), '');
});

test('a host without attempts leaves after its idle grace and removes its socket and its log; a connection that ends unstarted does not keep it', async (t) => {
  const { host, socket, log } = await startHost(t, 500);
  const conn = connect(socket);
  await once(conn, 'connect');
  conn.end();
  const [code] = (await once(host, 'exit')) as [number];
  t.is(code, 0);
  t.false(existsSync(socket));
  t.false(existsSync(log));
});

test('a host ended otherwise (SIGTERM) leaves its log for its tasks to show', async (t) => {
  const { host, socket, log } = await startHost(t, 60_000);
  host.kill('SIGTERM');
  const [code] = (await once(host, 'exit')) as [number];
  t.is(code, 1);
  t.false(existsSync(socket));
  t.true(existsSync(log));
});
