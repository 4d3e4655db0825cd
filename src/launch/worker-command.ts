import { fileURLToPath } from 'node:url';

const TS_MODULE = /\.(c|m)?tsx?$/;

/**
 * The command that starts a worker process: this Node binary running the worker entry next to
 * this module. When the library runs from its TypeScript sources, or the user's server module is
 * TypeScript, tsx is preloaded so both can be imported as they are.
 */
export function workerCommand(serverModule: string): { command: string; args: string[] } {
  const fromSource = TS_MODULE.test(fileURLToPath(import.meta.url));
  const entry = fileURLToPath(new URL(fromSource ? '../runtime/worker.ts' : '../runtime/worker.js', import.meta.url));
  const args: string[] = [];
  if (fromSource || TS_MODULE.test(serverModule)) args.push('--import', import.meta.resolve('tsx'));
  args.push(entry);
  return { command: process.execPath, args };
}
