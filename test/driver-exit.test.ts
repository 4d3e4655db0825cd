/**
 * A driver that leaves with its cluster still running (an uncaught exception, an unhandled
 * rejection, a rejected top-level await, `process.exit`) takes its run down with it: no worker and
 * no nats-server outlives it, its error is printed as Node prints it, and its exit code is its own.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { firstLine, isAlive, waitUntil } from './helpers/harness.js';

const DRIVER = new URL('./fixtures/throwing-driver.ts', import.meta.url).pathname;

const cases = [
  { how: 'throw', code: 1, printed: /Error: the driver broke on purpose\n\s+at .*throwing-driver\.ts/ },
  { how: 'reject', code: 1, printed: /Error: the driver rejected on purpose\n\s+at .*throwing-driver\.ts/ },
  { how: 'await', code: 1, printed: /RequestError: Partition 0, endpoint "no_such_endpoint"/ },
  { how: 'exit', code: 3, printed: /^$/ },
] as const;

for (const c of cases) {
  test(`a driver that leaves by ${c.how} with its cluster running leaves nothing running and keeps exit code ${c.code}`, async (t) => {
    t.timeout(120_000);
    const driver = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), DRIVER, c.how], { stdio: ['ignore', 'pipe', 'pipe'] });
    let started: number[] = [];
    // Whatever fails below, nothing the driver started is left behind (by the pids it reported).
    t.teardown(() => {
      driver.kill('SIGKILL');
      for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });
    let out = '';
    let err = '';
    driver.stdout.on('data', (d) => (out += d));
    driver.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => driver.once('close', (code) => resolve(code)));
    const code = await exited;
    const report = JSON.parse(out.split('\n')[0]!) as { nats: number; workers: number[] };
    started = [report.nats, ...report.workers];
    t.is(report.workers.length, 2);
    t.is(code, c.code, err);
    t.regex(err, c.printed);
    await waitUntil(() => started.every((pid) => !isAlive(pid)), 30_000, `the run's processes ${started.join(', ')} gone`);
    t.pass();
  });
}

for (const isolation of ['process', 'thread'] as const) {
  test(`a driver killed by SIGKILL takes its run down with it (isolation ${isolation}): its workers or partition host end`, async (t) => {
    t.timeout(120_000);
    const driver = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), DRIVER, 'wait', isolation], { stdio: ['ignore', 'pipe', 'pipe'] });
    let started: number[] = [];
    t.teardown(() => {
      driver.kill('SIGKILL');
      for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });
    const line = await firstLine(driver);
    const report = JSON.parse(line) as { nats: number; workers: number[] };
    started = [report.nats, ...report.workers];
    // Two worker processes, or the one partition host both threads run in.
    t.is(report.workers.length, isolation === 'thread' ? 1 : 2);
    t.true(started.every((pid) => isAlive(pid)));
    driver.kill('SIGKILL');
    await waitUntil(() => started.every((pid) => !isAlive(pid)), 30_000, `the run's processes ${started.join(', ')} gone`);
    t.pass();
  });
}
