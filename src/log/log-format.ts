/**
 * Turns what a partition server passes to `ctx.log` into text. JSON.stringify alone prints an
 * Error as `{}` (its message and stack are not own enumerable properties) and throws on BigInts
 * and cycles, so errors print their stack (and code), and objects print as JSON that never throws.
 */

/** One `ctx.log` argument as text: strings as they are, errors with stack and code, the rest as JSON. */
export function formatLogArg(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return formatError(value);
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value, jsonReplacer()) ?? String(value);
  } catch (err) {
    return `[unprintable ${Object.prototype.toString.call(value)}: ${(err as Error).message}]`;
  }
}

/** A whole `ctx.log` line: the arguments as text, separated by spaces. */
export function formatLogLine(args: readonly unknown[]): string {
  return args.map(formatLogArg).join(' ');
}

function formatError(err: Error, depth = 0): string {
  const code = (err as { code?: unknown }).code;
  const head = code !== undefined ? `[${String(code)}] ` : '';
  let text = head + (err.stack ?? `${err.name}: ${err.message}`);
  const cause = (err as { cause?: unknown }).cause;
  // A few levels are enough to find the origin; a cause chain may also loop.
  if (cause !== undefined && depth < 3) text += `\nCaused by: ${cause instanceof Error ? formatError(cause, depth + 1) : formatLogArg(cause)}`;
  return text;
}

/**
 * A replacer that prints BigInts, errors nested in objects, and cycles instead of throwing or
 * dropping them. Only a value that is its own ancestor is a cycle; an object seen twice side by
 * side prints twice.
 */
function jsonReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key, value) {
    if (typeof value === 'bigint') return `${value}n`;
    if (value === null || typeof value !== 'object') return value;
    // `this` is the object holding `value`: whatever was entered after it is finished.
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(value)) return '[circular]';
    ancestors.push(value);
    if (value instanceof Error) {
      const code = (value as { code?: unknown }).code;
      return { name: value.name, message: value.message, ...(code !== undefined ? { code } : {}) };
    }
    return value;
  };
}

/**
 * A failed worker's one error line: `failed: [code] message`, then the stack's frames (its first
 * line repeats the message), so the log shows where it happened.
 */
export function formatFailure(report: { code: string; message: string; stack?: string }): string {
  const at = report.stack?.indexOf('\n    at ') ?? -1;
  return `failed: [${report.code}] ${report.message}${at >= 0 ? report.stack!.slice(at) : ''}`;
}
