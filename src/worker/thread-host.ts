import { Worker } from 'node:worker_threads';
import { finished } from 'node:stream/promises';
import type { HostCommand, HostReport, ThreadMessage } from './host-messages.js';

/** How long a thread's output may still arrive after it ended before its exit is reported anyway. */
const OUTPUT_GRACE_MS = 2000;

/**
 * The partition host process of option `isolation: 'thread'`: runs the attempts its launcher
 * starts as worker threads of `entry` (the worker entry), relays their rows, output, results and
 * liveness ticks over its IPC channel, and reports each thread's end. A thread's death is its own
 * attempt's failure: threads serve HTTP with `node:http`, whose handles Node closes with the
 * thread (uWebSockets.js handles would abort the process). When the launcher goes (the channel
 * closes) the host ends, and its threads with it.
 */
export function runPartitionHost(entry: URL): void {
  const threads = new Map<number, Worker>();
  const send = (r: HostReport): void => {
    if (process.connected) process.send!(r);
  };
  process.on('disconnect', () => process.exit(1));
  process.on('message', (c: HostCommand) => {
    const thread = threads.get(c.id);
    if (c.t === 'start') startThread(c);
    else if (!thread) {
      // The thread ended meanwhile: its exit is reported; rows for it are dropped.
      if (c.t === 'rows') send({ t: 'rowsTaken', id: c.id });
    } else if (c.t === 'rows') {
      if (thread.stdin!.write(c.data)) send({ t: 'rowsTaken', id: c.id });
      else thread.stdin!.once('drain', () => send({ t: 'rowsTaken', id: c.id }));
    } else if (c.t === 'rowsEnd') thread.stdin!.end();
    else void thread.terminate();
  });

  function startThread(c: Extract<HostCommand, { t: 'start' }>): void {
    const { id } = c;
    const thread = new Worker(entry, {
      env: { ...process.env, ...c.env },
      stdin: true,
      stdout: true,
      stderr: true,
      ...(c.heapMb ? { resourceLimits: { maxOldGenerationSizeMb: c.heapMb } } : {}),
    });
    threads.set(id, thread);
    // The attempt's secrets go to this thread's port only, and are not kept here.
    thread.postMessage(c.secrets);
    // A thread that ended stops reading its rows; its exit says why.
    thread.stdin!.on('error', () => {});
    for (const stream of ['stdout', 'stderr'] as const) thread[stream].on('data', (data: Buffer) => send({ t: 'output', id, stream, data }));
    thread.on('message', (m: ThreadMessage) => {
      if (m.t === 'tick') send({ t: 'tick', id });
      else if (m.t === 'result') send({ t: 'result', id, data: m.data });
      else send({ t: 'resultEnd', id });
    });
    let error: string | undefined;
    thread.on('error', (err) => {
      error = `${err.name}: ${err.message}`;
    });
    thread.once('exit', (code) => {
      threads.delete(id);
      // Its last output lines explain a failure: wait for them to be relayed first.
      const output = Promise.all([finished(thread.stdout).catch(() => {}), finished(thread.stderr).catch(() => {})]);
      const grace = new Promise((r) => setTimeout(r, OUTPUT_GRACE_MS).unref());
      void Promise.race([output, grace]).then(() => send({ t: 'exit', id, code, ...(error ? { error } : {}) }));
    });
  }
}
