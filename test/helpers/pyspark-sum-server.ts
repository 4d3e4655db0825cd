import { PartitionServer, type PartitionContext, type Rows } from '../../src/index.js';

/** Which column the server sums; `arrow`: read `rows.arrow()` (else `rows.batches()`). */
export interface SumConfig {
  column: string;
  arrow?: boolean;
}

/**
 * Test server for the Python package: sums one column of its partition, read as Arrow record
 * batches or as row batches, and tells what it saw; its result is the partition's count and sum.
 */
export default class SumServer extends PartitionServer<Record<string, unknown>, SumConfig> {
  private seen = { format: '', batches: 0, count: 0, sum: 0 };

  override async initPartition(rows: Rows<Record<string, unknown>>, ctx: PartitionContext<SumConfig>): Promise<void> {
    const { column, arrow } = ctx.config!;
    const s = this.seen;
    s.format = rows.format;
    if (arrow) {
      for await (const batch of rows.arrow()) {
        s.batches++;
        const values = batch.getChild(column)!;
        for (let i = 0; i < batch.numRows; i++) s.sum += Number(values.get(i));
        s.count += batch.numRows;
      }
      return;
    }
    for await (const batch of rows.batches()) {
      s.batches++;
      for (const row of batch) s.sum += Number(row[column]);
      s.count += batch.length;
    }
  }

  override endpoints() {
    return { summary: () => this.seen, echo: (payload: unknown) => payload };
  }

  override buildResult(ctx: PartitionContext<SumConfig>) {
    return [{ partition: ctx.partition, count: this.seen.count, sum: this.seen.sum }];
  }
}
