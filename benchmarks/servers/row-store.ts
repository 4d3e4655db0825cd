/**
 * The data a bench partition holds, stored as columns (typed arrays), and the two questions the
 * benchmarks ask of it. Shared by the partition server and the plain node:http / uWS baselines so
 * every side runs exactly the same handler code.
 */

/** The value column derived from a key, the same formula as the PySpark side: `(id * 7919) % 1000`. */
export function valueOf(id: number): number {
  return (id * 7919) % 1000;
}

/** A row of the benchmarks: a key and a value (and, for 1 KB records, a payload). */
export interface BenchRow {
  id: number;
  v: number;
  payload?: string;
}

/** Columns of keys and values, with lookups by binary search while keys arrive sorted. */
export class RowStore {
  private ids = new Int32Array(1024);
  private vs = new Int16Array(1024);
  private size = 0;
  private sorted = true;
  private index: Map<number, number> | undefined;

  /** Number of rows held. */
  get length(): number {
    return this.size;
  }

  /** Appends a row (a bare key, whose value is derived, or a {@link BenchRow}). */
  add(row: number | BenchRow): void {
    const id = typeof row === 'number' ? row : row.id;
    const v = typeof row === 'number' ? valueOf(row) : row.v;
    if (this.size === this.ids.length) this.grow();
    if (this.size > 0 && id <= this.ids[this.size - 1]!) this.sorted = false;
    this.ids[this.size] = id;
    this.vs[this.size] = v;
    this.size++;
    this.index = undefined;
  }

  private grow(): void {
    const ids = new Int32Array(this.ids.length * 2);
    ids.set(this.ids);
    const vs = new Int16Array(this.vs.length * 2);
    vs.set(this.vs);
    this.ids = ids;
    this.vs = vs;
  }

  /** Count of rows whose value is below `lt`. */
  countBelow(lt: number): number {
    const vs = this.vs;
    const n = this.size;
    let c = 0;
    for (let i = 0; i < n; i++) if (vs[i]! < lt) c++;
    return c;
  }

  /** The row with key `key`, or null. */
  lookup(key: number): { id: number; v: number } | null {
    const i = this.sorted ? this.search(key) : (this.mapIndex().get(key) ?? -1);
    return i < 0 ? null : { id: this.ids[i]!, v: this.vs[i]! };
  }

  private search(key: number): number {
    let lo = 0;
    let hi = this.size - 1;
    const ids = this.ids;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = ids[mid]!;
      if (k === key) return mid;
      if (k < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private mapIndex(): Map<number, number> {
    if (!this.index) {
      this.index = new Map();
      for (let i = 0; i < this.size; i++) this.index.set(this.ids[i]!, i);
    }
    return this.index;
  }
}

/** Parses a numeric field of a request payload or query string; NaN when absent or not a number. */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : Number.NaN;
}
