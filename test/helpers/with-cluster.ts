import type { ExecutionContext } from 'ava';
import { Cluster, type ClusterOptions } from '../../src/index.js';

/**
 * Starts a cluster with `options`, runs `fn` on it and returns what `fn` returns. The cluster is
 * stopped in the test's teardown, whether `fn` (or the start) failed or not; `fn` may stop it
 * itself first.
 */
export async function withCluster<Row, Config, Result, T>(
  t: ExecutionContext,
  options: ClusterOptions<Row, Config>,
  fn: (cluster: Cluster<Row, Config, Result>) => T | Promise<T>,
): Promise<T> {
  const cluster = new Cluster<Row, Config, Result>(options);
  t.teardown(() => cluster.stop());
  await cluster.start();
  return fn(cluster);
}

/**
 * A cluster of `options`, not started (a test may listen to it or start it as it needs), stopped in
 * the test's teardown whatever happened; a stop that fails there is ignored, since the test asserts
 * on its own stops what it expects of them.
 */
export function testCluster<Row = unknown, Config = unknown, Result = unknown>(
  t: Pick<ExecutionContext, 'teardown'>,
  options: ClusterOptions<Row, Config>,
): Cluster<Row, Config, Result> {
  const cluster = new Cluster<Row, Config, Result>(options);
  t.teardown(() => cluster.stop().catch(() => {}));
  return cluster;
}
