import { PartitionServer, type PartitionContext } from '../../src/index.js';

/**
 * Test server for Spark runs: `rows` returns the partition's rows, `whoami` its index, attempt and
 * the Spark task it runs in; on shutdown each row is returned as a result record.
 */
export class EchoServer extends PartitionServer<unknown> {
  override endpoints(ctx: PartitionContext) {
    return {
      rows: () => this.rows,
      whoami: () => ({
        partition: ctx.partition,
        attempt: ctx.attempt,
        partitions: ctx.partitions,
        count: this.rows.length,
        stage: process.env.SPS_SPARK_STAGE_ID,
        taskAttemptId: process.env.SPS_SPARK_TASK_ATTEMPT_ID,
        pid: process.pid,
      }),
    };
  }

  override buildResult(ctx: PartitionContext) {
    return this.rows.map((row, i) => ({ partition: ctx.partition, i, row: JSON.stringify(row) }));
  }
}

export default EchoServer;
