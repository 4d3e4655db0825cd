import type { Readable } from 'node:stream';

/**
 * Calls `onLine` for every line a child process writes to the given streams (its stdout and
 * stderr), so output can be prefixed, forwarded and kept for error messages line by line.
 */
export function forEachLine(streams: Readable[], onLine: (line: string) => void): void {
  for (const stream of streams) {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine(line);
    });
    stream.on('end', () => {
      if (pending) onLine(pending);
    });
  }
}
