import { closeSync, constants, fstatSync, openSync, rmSync, unlinkSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createServer, Socket } from 'node:net';
import type { SocketCommand, SocketReport } from './host-messages.js';
import { PartitionThreads } from './partition-threads.js';

/** The longest command line a task may send (its environment and secrets). */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** How long an ended thread's channels may take to flush before its exit is reported anyway. */
const FLUSH_GRACE_MS = 2000;

/** Opens one of a task's FIFOs without blocking (its task already holds the other end of those it reads). */
function openFifo(path: unknown, write: boolean): Socket {
  if (typeof path !== 'string') throw new Error('a FIFO path is missing');
  const fd = openSync(path, (write ? constants.O_WRONLY : constants.O_RDONLY) | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFIFO()) throw new Error(`${path} is not a FIFO`);
    const socket = new Socket({ fd, readable: !write, writable: write });
    // A task that went away is reported by its control socket; a write to its FIFO just stops.
    socket.on('error', () => {});
    return socket;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Ends a channel; resolves once it flushed (or could not). */
function endChannel(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    s.once('close', () => resolve());
    s.end();
  });
}

/**
 * The partition host of Spark tasks run with option `isolation: 'thread'`: the first task of a run
 * on an executor starts it (see the runner's `_HostedThread`), later ones find it on the Unix
 * socket `socketPath` (in a private directory). Each connection is one task attempt: its `start`
 * line names FIFOs the task made for its rows, output, results and liveness ticks, which the host
 * relays to and from the attempt's thread (see {@link PartitionThreads}); the attempt's secrets go
 * to the thread's port only. On the thread's exit the host sends its exit code and closes the
 * connection; a connection that closes first ends its thread (Spark killed or cancelled the task).
 * The host exits once it has had no attempt for `idleMs`, removing its socket and its log (`logPath`:
 * where its own output goes; any other end leaves the log for its tasks to show).
 */
export function runSocketHost(entry: URL, socketPath: string, idleMs: number, logPath?: string): void {
  const threads = new PartitionThreads(entry);
  let nextId = 0;
  let connections = 0;
  let idle: NodeJS.Timeout | undefined;
  const leave = (code: number): never => {
    for (const file of code === 0 && logPath ? [socketPath, logPath] : [socketPath]) {
      try {
        unlinkSync(file);
      } catch {
        // gone already
      }
    }
    process.exit(code);
  };
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      // The socket goes first: a task that finds none starts a new host (one connecting meanwhile
      // finds its connection closed unanswered, and tries again).
      if (connections === 0 && threads.size === 0) leave(0);
      else armIdle();
    }, idleMs);
  };

  const serve = (control: Socket): void => {
    connections++;
    clearTimeout(idle);
    const id = nextId++;
    let started = false;
    let exited = false;
    let buffered = '';
    let fifoDir: string | undefined;
    const report = (r: SocketReport): void => {
      if (!control.destroyed) control.write(`${JSON.stringify(r)}\n`);
    };
    const start = (c: Extract<SocketCommand, { t: 'start' }>): void => {
      // The task holds the read ends of the channels it reads: opening their write ends does not wait.
      const opened: Socket[] = [];
      try {
        for (const [path, write] of [
          [c.fifos.output, true],
          [c.fifos.results, true],
          [c.fifos.ticks, true],
          [c.fifos.rows, false],
        ] as const)
          opened.push(openFifo(path, write));
      } catch (err) {
        for (const s of opened) s.destroy();
        report({ t: 'exit', code: 1, error: `the partition host could not open the task's channels: ${(err as Error).message}` });
        control.end();
        return;
      }
      const [output, results, ticks, rows] = opened as [Socket, Socket, Socket, Socket];
      // The task removes its FIFOs' directory when it ends; the host, when the task went without.
      const dir = dirname(c.fifos.rows);
      if (dirname(dir) === dirname(socketPath) && basename(dir).startsWith('sps-task-')) fifoDir = dir;
      started = true;
      threads.start(id, c, {
        output: (_stream, data) => output.write(data),
        result: (data) => results.write(data),
        resultEnd: () => results.end(),
        tick: () => {
          if (!ticks.writableEnded) ticks.write('.');
        },
        exit: (code, error) => {
          exited = true;
          rows.destroy();
          // As its last output line: the task's report of a failure quotes it.
          if (error) output.write(`failed: the partition thread died: ${error}\n`);
          void Promise.race([Promise.all([output, results, ticks].map(endChannel)), new Promise((r) => setTimeout(r, FLUSH_GRACE_MS).unref())]).then(() => {
            report({ t: 'exit', code, ...(error ? { error } : {}) });
            control.end();
          });
        },
      });
      rows.on('data', (data: Buffer) => {
        rows.pause();
        threads.rows(id, data, () => rows.resume());
      });
      rows.once('end', () => threads.rowsEnd(id));
      report({ t: 'started', pid: process.pid });
    };
    const command = (line: string): void => {
      let c: SocketCommand;
      try {
        c = JSON.parse(line) as SocketCommand;
      } catch {
        control.destroy();
        return;
      }
      if (c.t === 'start' && !started && c.fifos && typeof c.secrets === 'string' && c.env && typeof c.env === 'object') start(c);
      else if (c.t === 'kill' && started && !exited) threads.kill(id);
      else control.destroy();
    };
    control.setEncoding('utf8');
    control.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE_BYTES) return void control.destroy();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        command(line);
      }
    });
    control.on('error', () => {});
    // The task went away (Spark killed it, or its Python worker died): its thread ends too.
    control.once('end', () => {
      if (started && !exited) threads.kill(id);
      // Else nothing is left to report: this side ends too (a thread's exit ends it once reported).
      else control.end();
    });
    control.once('close', () => {
      if (started && !exited) threads.kill(id);
      if (fifoDir) rmSync(fifoDir, { recursive: true, force: true });
      connections--;
      if (connections === 0) armIdle();
    });
  };

  const server = createServer({ allowHalfOpen: true }, serve);
  server.once('error', (err) => {
    process.stderr.write(`partition host: cannot listen on ${socketPath}: ${err.message}\n`);
    process.exit(1);
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => leave(1));
  server.listen(socketPath, () => armIdle());
}
