/**
 * How collectives cut values: the block of a vector each partition owns (as Spark's `parallelize`
 * splits a range), and the chunks a run of bytes travels in. Pure functions: every partition
 * computes the same cuts from the same lengths, so chunk `c` means the same bytes everywhere.
 */

/** Elements `[start, end)` of the block partition `i` of `parts` owns in a vector of `length`. */
export function blockOf(length: number, parts: number, i: number): { start: number; end: number } {
  return { start: Math.floor((i * length) / parts), end: Math.floor(((i + 1) * length) / parts) };
}

/** Byte ranges `[start, end)` of the chunks `bytes` bytes travel in; at least one (empty) chunk. */
export function chunksOf(bytes: number, chunkBytes: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let start = 0; start < bytes; start += chunkBytes) out.push({ start, end: Math.min(bytes, start + chunkBytes) });
  return out.length ? out : [{ start: 0, end: 0 }];
}

/** The largest multiple of 8 bytes (every element size divides it) at most `limit`, and at least 8. */
export function alignChunk(limit: number): number {
  return Math.max(8, Math.floor(limit / 8) * 8);
}
