import { inVenv, onPath } from './executables.js';

// Node cannot set a parent-death signal on a child, so a tiny Python shim sets it and then execs
// the real command (the signal survives exec). If the parent is already gone it does not exec.
const EXEC_TIED =
  'import ctypes, os, signal, sys\n' +
  'try:\n    ctypes.CDLL("libc.so.6").prctl(1, int(sys.argv[2]))\nexcept OSError:\n    pass\n' +
  'if os.getppid() != int(sys.argv[1]):\n    sys.exit(1)\n' +
  'os.execv(sys.argv[3], sys.argv[3:])';

/**
 * The command line that runs `command` so that the kernel signals it when this process dies, even
 * by SIGKILL — no nats-server or Spark driver outlives the library process that started it. The
 * process keeps its pid (the shim execs). Without Linux or Python the command runs as it is.
 */
export function tiedCommand(
  command: string,
  args: string[],
  opts: { python?: string; signal?: 'SIGTERM' | 'SIGKILL' } = {},
): { command: string; args: string[] } {
  const python = opts.python ?? inVenv('python') ?? onPath('python3');
  if (process.platform !== 'linux' || !python) return { command, args };
  const signal = opts.signal === 'SIGTERM' ? '15' : '9';
  return { command: python, args: ['-c', EXEC_TIED, String(process.pid), signal, command, ...args] };
}
