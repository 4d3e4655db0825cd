import type { ExecutionContext } from 'ava';
import { DemoCluster } from '../../examples/demo-cluster.js';
import type { ClusterOptions } from '../../src/index.js';

/**
 * The seed's demo on any launcher: 1000 numbers in 2 partitions, partition 0 over HTTP and NATS,
 * partition 1 over HTTP, then stop and the per-partition results. `launch` picks the launcher.
 */
export async function runSeedDemo(t: ExecutionContext, launch: Partial<ClusterOptions<number>>): Promise<void> {
  const cluster = new DemoCluster({
    server: new URL('../../examples/demo-server.ts', import.meta.url),
    data: { range: { end: 1000 } },
    partitions: 2,
    startTimeoutMs: 120_000,
    ...launch,
  });
  t.teardown(() => cluster.stop().catch(() => {}));
  await cluster.start();
  const overHttp = await cluster.getPartitionList(0);
  t.deepEqual(
    overHttp,
    Array.from({ length: 500 }, (_, i) => i),
  );
  t.deepEqual(await cluster.request<number[]>(0, 'get_list'), overHttp);
  t.deepEqual(
    await cluster.getPartitionList(1),
    Array.from({ length: 500 }, (_, i) => i + 500),
  );
  t.deepEqual(
    cluster.members.map((m) => m.attempt),
    [0, 0],
  );
  await cluster.stop();
  t.deepEqual(
    [...cluster.result()],
    [
      [0, [{ partition: 0, count: 500, sum: 124750 }]],
      [1, [{ partition: 1, count: 500, sum: 374750 }]],
    ],
  );
}
