import { HttpPartitionServer, type HttpRouter, type PartitionContext } from 'spark-partition-server';

/** The seed's demo server: `GET /app/get_list` returns the partition's numbers, comma-separated. */
export class DemoPartitionServer extends HttpPartitionServer<number> {
  override routes(router: HttpRouter): void {
    router.get('/get_list', () => this.rows.join(','));
  }

  override endpoints(_ctx: PartitionContext) {
    return { get_list: () => this.rows };
  }

  override buildResult(ctx: PartitionContext) {
    return [{ partition: ctx.partition, count: this.rows.length, sum: this.rows.reduce((a, b) => a + b, 0) }];
  }
}

export default DemoPartitionServer;
