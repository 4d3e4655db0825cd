/**
 * The Spark runner's bus connection (src/spark/runner/sps_runner.py) when its nats-server goes
 * away for longer than a flush waits: on a loaded host the server may cut a client that reads too
 * slowly, and the runner must ride out the reconnect rather than fail its run.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { startNatsServer, type NatsServerProcess } from '../src/transport/nats-server.js';
import { ROOT, PYTHON } from './helpers/python-script.js';

test('a flush while the nats-server is gone waits for the reconnect and delivers; ending a reconnecting connection closes it without an error', async (t) => {
  t.timeout(180_000);
  let server: NatsServerProcess = await startNatsServer();
  t.teardown(() => server.stop());
  const port = server.port;
  const child = spawn(PYTHON, [join(ROOT, 'test/helpers/pyspark/runner_bus.py'), join(ROOT, 'src/spark/runner/sps_runner.py'), server.url], { stdio: 'pipe' });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-8000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done) throw new Error(`runner_bus.py ended (${await exited}):\n${err}`);
    return line.value;
  };

  t.is(await next(), 'CONNECTED');
  await server.stop();
  child.stdin.write('server-gone\n');
  // Only once a flush has timed out does the server come back, on the same port.
  t.is(await next(), 'FLUSH-TIMEOUT');
  server = await startNatsServer({ port });
  let line = await next();
  // Flushes made while the server was starting again may time out too; the runner keeps trying.
  while (line === 'FLUSH-TIMEOUT') line = await next();
  t.is(line, 'FLUSHED');
  t.deepEqual(JSON.parse(await next()), { received: 'published while the server was gone' });

  await server.stop();
  child.stdin.write('server-gone\n');
  t.deepEqual(JSON.parse(await next()), { closed: true });
  t.is(await exited, 0, err);
});
