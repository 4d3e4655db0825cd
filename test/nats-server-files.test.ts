/**
 * A private nats-server's configuration (its token or users, account JWTs, the TLS key) is on disk
 * only while the server starts: a driver killed by SIGKILL cannot remove it afterwards.
 */
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { PROBLEM_LINES, startNatsServer, type NatsServerProcess } from '../src/transport/nats-server.js';
import { waitUntil } from './helpers/harness.js';

/** The configuration file nats-server was started with (`-c FILE` in its command line). */
function configOf(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return argv[argv.indexOf('-c') + 1]!;
}

async function answers(server: NatsServerProcess, token: string): Promise<boolean> {
  const nc = await connect({ servers: server.url, token, reconnect: false });
  try {
    await nc.flush();
    return true;
  } finally {
    await nc.close();
  }
}

test('once ready, the server’s configuration file and its folder are gone; after a restart (SIGKILLed) too; it answers meanwhile', async (t) => {
  const token = 'a-token-that-must-not-stay-on-disk';
  const server = await startNatsServer({ token });
  t.teardown(() => server.stop());
  const config = configOf(server.pid);
  t.false(existsSync(config), config);
  t.false(existsSync(dirname(config)), 'its private folder is removed too');
  t.true(await answers(server, token));

  const before = server.pid;
  process.kill(before, 'SIGKILL');
  await server.exited;
  await server.restart();
  t.not(server.pid, before);
  t.false(existsSync(configOf(server.pid)), 'written again for the restart, and removed again');
  t.false(existsSync(dirname(configOf(server.pid))));
  t.true(await answers(server, token));
});

test('with JetStream storing in its folder, only the files read at the start go; stop() removes the folder', async (t) => {
  const server = await startNatsServer({ token: 'jetstream-token', jetstream: { maxFileBytes: 64 * 1024 ** 2, maxMemoryBytes: 16 * 1024 ** 2 } });
  const dir = dirname(configOf(server.pid));
  try {
    t.deepEqual(readdirSync(dir), ['jetstream']);
    t.true(await answers(server, 'jetstream-token'));
  } finally {
    await server.stop();
  }
  t.false(existsSync(dir));
});

test('the warnings and errors a server logs after its start are kept for diagnosis (a refused client), bounded; nothing else of its log', async (t) => {
  const token = 'the-right-token';
  const server = await startNatsServer({ token });
  t.teardown(() => server.stop());
  t.deepEqual(server.problems(), [], 'a clean start logs no warning');
  await t.throwsAsync(connect({ servers: server.url, token: 'a-wrong-token', reconnect: false }));
  // The server logs the refusal on its own time: the connection is refused before it is written.
  await waitUntil(() => server.problems().some((l) => /\[ERR\].*authentication error/.test(l)), 10_000, 'the refusal in the log');
  t.true(await answers(server, token));
  t.true(
    server.problems().every((l) => /\[(WRN|ERR|FTL)\]/.test(l)),
    server.problems().join('\n'),
  );
  t.true(server.problems().length <= PROBLEM_LINES);
});
