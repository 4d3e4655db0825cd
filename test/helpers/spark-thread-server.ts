import { getHeapStatistics } from 'node:v8';
import { PartitionServer } from '../../src/index.js';

/**
 * Test server for Spark runs with `isolation: 'thread'`: `whoami` says which partition, attempt and
 * process serve; with config `{ failOnce: p }`, partition p's first attempt fails while starting
 * (a retry serves). Its result is one record per row. `whoami` also says the thread's heap limit.
 */
const server: PartitionServer<unknown, { failOnce?: number } | undefined> = new PartitionServer<unknown, { failOnce?: number } | undefined>({
  init: async (rows, ctx) => {
    if (ctx.attempt === 0 && ctx.partition === ctx.config?.failOnce) throw new Error('first attempt fails on purpose');
    for await (const batch of rows.batches()) server.rows.push(...batch);
  },
  endpoints: {
    whoami: (_payload, ctx) => ({
      partition: ctx.partition,
      attempt: ctx.attempt,
      pid: process.pid,
      count: server.rows.length,
      heapLimitMb: getHeapStatistics().heap_size_limit / 2 ** 20,
    }),
  },
  result: (ctx) => server.rows.map((row) => ({ partition: ctx.partition, attempt: ctx.attempt, row: JSON.stringify(row) })),
});

export default server;
