import test from 'ava';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Cluster, PartitionFailedError, WorkerError, type Logger } from '../src/index.js';
import { isAlive, sharedNats } from './helpers/harness.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

const FAILING = new URL('./fixtures/failing-server.ts', import.meta.url);
const NO_SERVER = new URL('./fixtures/no-server.ts', import.meta.url);

/** A logger keeping every record with its level and the bindings of the child it came through. */
function capturingLogger(): { logger: Logger; records: { level: string; bindings: Record<string, unknown>; msg: string }[] } {
  const records: { level: string; bindings: Record<string, unknown>; msg: string }[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const method =
      (level: string) =>
      (fieldsOrMessage: object | string, message?: string): void => {
        records.push({ level, bindings, msg: typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '') });
      };
    return { debug: method('debug'), info: method('info'), warn: method('warn'), error: method('error'), child: (more) => make({ ...bindings, ...more }) };
  };
  return { logger: make({}), records };
}

/** The line of `file` holding `text`, from 1. */
async function lineOf(file: string, text: string): Promise<number> {
  return (await readFile(file, 'utf8')).split('\n').findIndex((l) => l.includes(text)) + 1;
}

test.serial("with logLevel 'silent', a throwing initPartition reaches the driver as the cause: the user's code, message and the .ts stack", async (t) => {
  const server = await nats.get();
  const { logger, records } = capturingLogger();
  const cluster = new Cluster({
    server: FAILING,
    config: { failIn: 'init', code: 'E_USER_INIT' },
    data: [1, 2],
    partitions: 1,
    maxFailures: 2,
    natsUrl: server.url,
    logger,
    logLevel: 'silent',
  });
  t.teardown(() => cluster.stop());
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.is(err!.failures, 2);
  t.regex(err!.message, /Last error: exited with code 1: \[E_USER_INIT\] init refused on purpose$/);
  const cause = err!.cause as WorkerError;
  t.true(cause instanceof WorkerError);
  t.is(cause.code, 'E_USER_INIT');
  t.is(cause.partition, 0);
  t.is(cause.message, 'init refused on purpose');
  // Source-mapped: the frame names the fixture's .ts file and the line that threw.
  const file = fileURLToPath(FAILING);
  const line = await lineOf(file, "throw Object.assign(new Error('init refused on purpose')");
  t.regex(cause.stack!, new RegExp(`at refuse \\((file://)?${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}:\\d+\\)`), cause.stack);
  // Silent: the workers logged nothing, so no record carries the stack.
  t.false(records.some((r) => r.msg.includes('at refuse')));
  t.deepEqual(cluster.workerPids, []);
});

test.serial('a failed initPartition is logged once per attempt at error, with its stack', async (t) => {
  const server = await nats.get();
  const { logger, records } = capturingLogger();
  const cluster = new Cluster({
    server: FAILING,
    config: { failIn: 'init', code: 'E_USER_INIT' },
    data: [1],
    partitions: 1,
    maxFailures: 1,
    natsUrl: server.url,
    logger,
  });
  t.teardown(() => cluster.stop());
  await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  const failed = records.filter((r) => r.msg.includes('init refused on purpose'));
  const errors = failed.filter((r) => r.level === 'error');
  t.is(errors.length, 1, JSON.stringify(failed));
  t.like(errors[0]!.bindings, { partition: 0, attempt: 0 });
  t.regex(errors[0]!.msg, /^failed: \[E_USER_INIT\] init refused on purpose\n\s+at refuse \(.*failing-server\.ts:\d+:\d+\)/);
});

test.serial('a server module that exports no partition server fails the partition at once, not retried', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({ server: NO_SERVER, data: [1, 2], partitions: 2, maxFailures: 4, natsUrl: server.url, log: false, logLevel: 'silent' });
  t.teardown(() => cluster.stop());
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.is(err!.failures, 1);
  t.regex(
    err!.message,
    /failed with an error a retry cannot fix, so it was not retried\. Error: .*\[SPS_SERVER_MODULE\] Partition server module ".*": has no export "default" \(exports: notAServer\)/,
  );
  t.like(err!.cause, { code: 'SPS_SERVER_MODULE', retryable: false });
  t.false(err!.retryable);
  // Only first attempts ever ran.
  t.true(cluster.members.every((m) => m.attempt === 0));
  for (const m of cluster.members) t.false(isAlive(m.pid));
});

test.serial('an HTTP server that cannot load (SPS_UWS_LOAD) fails the partition at once with the reason', async (t) => {
  const server = await nats.get();
  const { logger, records } = capturingLogger();
  const cluster = new Cluster({ server: FAILING, config: { failIn: 'http' }, data: [1, 2], partitions: 2, maxFailures: 4, natsUrl: server.url, logger });
  t.teardown(() => cluster.stop());
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.is(err!.failures, 1);
  t.like(err!.cause, { code: 'SPS_UWS_LOAD', message: 'The native uWebSockets.js binary does not load on this platform (simulated)' });
  // No attempt after the first was launched.
  t.false(records.some((r) => r.bindings.attempt !== undefined && r.bindings.attempt !== 0));
});

test.serial("a user's error with retryable: false is not retried either", async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({
    server: FAILING,
    config: { failIn: 'init', code: 'E_BAD_INPUT', retryable: false },
    data: [1],
    partitions: 1,
    maxFailures: 4,
    natsUrl: server.url,
    log: false,
  });
  t.teardown(() => cluster.stop());
  const err = await t.throwsAsync(cluster.start(), { instanceOf: PartitionFailedError });
  t.is(err!.failures, 1);
  t.like(err!.cause, { code: 'E_BAD_INPUT', retryable: false });
});
