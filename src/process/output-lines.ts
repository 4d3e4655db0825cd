import type { Readable } from 'node:stream';

/**
 * Longest line passed on, in characters. Worker output is logged and kept in tails line by line;
 * a longer line (a process writing megabytes without a newline) is cut here, marked, and the rest
 * of it up to the next newline is skipped, so a line costs at most this much memory.
 */
export const MAX_LINE_CHARS = 64 * 1024;

/** What a cut line ends with: how many characters were skipped. */
export function truncationMark(skipped: number): string {
  return ` … [line cut: ${skipped} more characters]`;
}

/**
 * Splits text that arrives in pieces into lines, each at most `maxChars` (plus the truncation
 * mark). Each piece is scanned once: the time is linear in the text, however it is cut.
 */
export class LineSplitter {
  /** Pieces of the line so far (at most `maxChars` characters in all), and how many were skipped. */
  private parts: string[] = [];
  private kept = 0;
  private skipped = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxChars = MAX_LINE_CHARS,
  ) {}

  /** Adds text; calls `onLine` for each line it completes. */
  push(text: string): void {
    for (let at = 0; ;) {
      const nl = text.indexOf('\n', at);
      const end = nl < 0 ? text.length : nl;
      const n = Math.min(this.maxChars - this.kept, end - at);
      if (n > 0) {
        this.parts.push(text.slice(at, at + n));
        this.kept += n;
      }
      this.skipped += end - at - n;
      if (nl < 0) return;
      this.flush();
      at = nl + 1;
    }
  }

  /** The text ended: passes on a last line without a newline, if any. */
  end(): void {
    if (this.kept > 0 || this.skipped > 0) this.flush();
  }

  private flush(): void {
    const line = this.parts.join('');
    const skipped = this.skipped;
    this.parts = [];
    this.kept = 0;
    this.skipped = 0;
    this.onLine(skipped > 0 ? line + truncationMark(skipped) : line);
  }
}

/**
 * Calls `onLine` for every line a child process writes to the given streams (its stdout and
 * stderr), so output can be prefixed, forwarded and kept for error messages line by line. Lines
 * longer than {@link MAX_LINE_CHARS} are cut (see {@link LineSplitter}).
 */
export function forEachLine(streams: Readable[], onLine: (line: string) => void): void {
  for (const stream of streams) {
    const lines = new LineSplitter(onLine);
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => lines.push(chunk));
    stream.on('end', () => lines.end());
  }
}
