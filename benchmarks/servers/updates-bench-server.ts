/** A key → amount view kept current by live updates: what the updates benchmark measures. */
import { PartitionServer, type PartitionContext, type Update } from '../../src/server.js';

export default class UpdatesBenchServer extends PartitionServer<{ id: string; amount: number }> {
  private readonly view = new Map<string, number>();

  override async initPartition(rows: Parameters<PartitionServer<{ id: string; amount: number }>['initPartition']>[0]): Promise<void> {
    for await (const batch of rows.batches()) for (const r of batch) this.view.set(r.id, r.amount);
  }

  override onUpdate(update: Update): void {
    this.view.set(update.key, (this.view.get(update.key) ?? 0) + (update.value as { n: number }).n);
  }

  override endpoints(ctx: PartitionContext) {
    return {
      get: (p: unknown) => this.view.get((p as { key: string }).key) ?? null,
      status: () => ({ ...ctx.updates(), attempt: ctx.attempt }),
    };
  }
}
