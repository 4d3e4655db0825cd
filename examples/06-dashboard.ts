/**
 * Example 6, the live dashboard: a cluster with its dashboard open, some traffic so the request
 * columns move, and the page's address printed (open it in a browser). It runs until Ctrl-C, or
 * with `--once` it reads the dashboard's snapshot the page is drawn from, and stops.
 *
 *     npx tsx examples/06-dashboard.ts [--once]
 */
import { fileURLToPath } from 'node:url';
import { Cluster } from 'spark-partition-server';

/** Runs the example; `print` gets its lines. With `once`, stops after one snapshot, which it returns. */
export async function main(print: (line: string) => void = console.log, once = false) {
  const cluster = new Cluster<number>({ server: new URL('./demo-server.ts', import.meta.url), data: { range: { end: 1000 } }, partitions: 3 });
  await cluster.start();
  try {
    const dashboard = await cluster.dashboard({ port: 0 });
    print(`dashboard: ${dashboard.url}`);
    // Traffic for the requests, req/s and latency columns.
    for (let i = 0; i < 50; i++) await cluster.requestAll('get_list');
    // The page is drawn from this snapshot (pushed over its WebSocket); the token is required.
    const snapshot = (await (await fetch(new URL('/snapshot', dashboard.url), { headers: { authorization: `Bearer ${cluster.token}` } })).json()) as {
      partitions: { partition: number; state: string; attempt: number }[];
    };
    for (const p of snapshot.partitions) print(`partition ${p.partition}: ${p.state}, attempt ${p.attempt}`);
    if (!once) {
      print('Ctrl-C stops the cluster');
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    return { snapshot };
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(console.log, process.argv.includes('--once'));
