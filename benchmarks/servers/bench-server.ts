/**
 * The partition server the benchmarks launch. `config.store` picks what it keeps of its rows:
 * `columns` (a {@link RowStore}, queried by `count_matching` and `lookup`), `objects` (the rows as
 * they arrived, for memory figures) or `discard` (counted only, for load rates). It also answers
 * `stats` with its load timing and memory, over NATS and HTTP.
 */
import { HttpPartitionServer, type HttpRouter, type PartitionContext, type Rows } from '../../src/index.js';
import { num, RowStore, type BenchRow } from './row-store.js';

/** The bench server's config. */
export interface BenchConfig {
  store?: 'columns' | 'objects' | 'discard';
  /**
   * How initPartition reads its rows: `batches` (rows.batches(), the fast path; default), `rows`
   * (for await, one await per row) or `arrow` (rows.arrow(): record batches, no row objects).
   */
  read?: 'batches' | 'rows' | 'arrow';
}

/** Load timing and memory, as returned by the `stats` endpoint. */
export interface ServerStats {
  rows: number;
  /** From initPartition's start to its last row, ms. */
  loadMs: number;
  /** From initPartition's start to its first row, ms. */
  firstRowMs: number;
  rss: number;
  /** The process's highest RSS so far, bytes. */
  maxRss: number;
  heapUsed: number;
  /** Bytes of the Arrow record batches read (`read: 'arrow'`). */
  arrowBytes: number;
  pid: number;
}

export class BenchServer extends HttpPartitionServer<number | BenchRow, BenchConfig> {
  readonly store = new RowStore();
  kept: unknown[] = [];
  count = 0;
  loadMs = 0;
  firstRowMs = -1;
  arrowBytes = 0;

  override async initPartition(rows: Rows<number | BenchRow>, ctx: PartitionContext<BenchConfig>): Promise<void> {
    const mode = ctx.config?.store ?? 'columns';
    const t0 = performance.now();
    const take = (row: number | BenchRow): void => {
      if (mode === 'columns') this.store.add(row);
      else if (mode === 'objects') this.kept.push(row);
    };
    const read = ctx.config?.read ?? 'batches';
    if (read === 'arrow') {
      // Columns stay as Arrow gave them: nothing is kept, so only the reading is timed.
      for await (const batch of rows.arrow()) {
        if (this.count === 0 && batch.numRows > 0) this.firstRowMs = performance.now() - t0;
        this.count += batch.numRows;
        for (const child of batch.data.children) this.arrowBytes += child.byteLength;
      }
    } else if (read === 'rows') {
      for await (const row of rows) {
        if (this.count === 0) this.firstRowMs = performance.now() - t0;
        this.count++;
        take(row);
      }
    } else {
      for await (const batch of rows.batches()) {
        if (this.count === 0 && batch.length > 0) this.firstRowMs = performance.now() - t0;
        this.count += batch.length;
        if (mode !== 'discard') for (const row of batch) take(row);
      }
    }
    this.loadMs = performance.now() - t0;
  }

  stats(): ServerStats {
    const m = process.memoryUsage();
    return {
      rows: this.count,
      loadMs: this.loadMs,
      firstRowMs: this.firstRowMs,
      rss: m.rss,
      maxRss: process.resourceUsage().maxRSS * 1024,
      heapUsed: m.heapUsed,
      arrowBytes: this.arrowBytes,
      pid: process.pid,
    };
  }

  override endpoints(_ctx: PartitionContext<BenchConfig>) {
    return {
      count_matching: (p: unknown) => this.store.countBelow(num((p as { lt?: unknown } | null)?.lt)),
      lookup: (p: unknown) => this.store.lookup(num((p as { key?: unknown } | null)?.key)),
      stats: () => this.stats(),
      ping: () => 1,
    };
  }

  override routes(router: HttpRouter): void {
    router.get('/count', (req) => ({ count: this.store.countBelow(num(req.query.get('lt'))) }));
    router.get('/lookup', (req) => this.store.lookup(num(req.query.get('key'))) ?? { id: null });
    router.get('/stats', () => this.stats());
  }

  override buildResult(ctx: PartitionContext<BenchConfig>) {
    return [{ partition: ctx.partition, rows: this.count }];
  }
}

export default BenchServer;
