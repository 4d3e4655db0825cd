/**
 * The table of error codes in docs/errors.md, rendered from the one registry
 * (src/error-codes.ts): `npm run protocol` writes it, and a test fails when it is out of date.
 */
import { ERROR_CODES } from '../src/error-codes.js';

/** Marks the generated table in docs/errors.md. */
export const TABLE_START = '<!-- the table below is written by `npm run protocol` from src/error-codes.ts -->';
export const TABLE_END = '<!-- end of the generated table -->';

/** The Codes table, between its markers, in alphabetical order of code. */
export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CODES)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([code, c]) => `| \`${code}\` | ${c.retryable ? 'yes' : 'no'} | ${c.meaning} |`);
  return [TABLE_START, '| code | retryable | meaning |', '|---|---|---|', ...rows, TABLE_END].join('\n');
}

/** `page` with its generated table replaced by `table`. */
export function withErrorTable(page: string, table: string): string {
  const start = page.indexOf(TABLE_START);
  const end = page.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`docs/errors.md lacks the markers of the generated table (${TABLE_START})`);
  return page.slice(0, start) + table + page.slice(end + TABLE_END.length);
}
