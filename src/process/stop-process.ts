import type { ChildProcess } from 'node:child_process';

/** What {@link stopProcess} needs of a process (a child process, or a partition thread's handle). */
export type StoppableProcess = Pick<ChildProcess, 'exitCode' | 'signalCode' | 'kill'> & {
  once(event: 'exit', listener: () => void): unknown;
};

/** Sends SIGTERM, then SIGKILL after `graceMs`, and resolves when the process has exited. */
export async function stopProcess(child: StoppableProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
