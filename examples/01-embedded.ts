/**
 * Example 1, the embedded launcher: 1000 numbers in 2 partitions, an HTTP server on each,
 * partition 0's list fetched over HTTP and over NATS, then stop and collect what each partition
 * returned. No Spark: workers are child processes on a private nats-server. `npm run demo` runs it.
 */
import { fileURLToPath } from 'node:url';
import { DemoCluster } from './demo-cluster.js';

/** Runs the example; `print` gets its lines. Returns what the test checks. */
export async function main(print: (line: string) => void = console.log) {
  const cluster = new DemoCluster({
    server: new URL('./demo-server.ts', import.meta.url),
    data: { range: { end: 1000 } },
    partitions: 2,
  });
  const t0 = performance.now();
  await cluster.start();
  try {
    print(`started ${cluster.partitions} partitions in ${(performance.now() - t0).toFixed(0)} ms`);
    for (const [p, { host, port }] of cluster.hosts) print(`  partition ${p} serves on http://${host}:${port}`);

    const overHttp = await cluster.getPartitionList(0);
    print(`partition 0 over HTTP: ${overHttp.length} numbers: ${overHttp.slice(0, 5).join(',')},...,${overHttp.at(-1)}`);
    const overNats = await cluster.request<number[]>(0, 'get_list');
    print(`partition 0 over NATS: ${overNats.length} numbers: ${overNats.slice(0, 5).join(',')},...,${overNats.at(-1)}`);
    print(`same list both ways: ${JSON.stringify(overHttp) === JSON.stringify(overNats)}`);

    await cluster.stop();
    for (const [p, records] of cluster.result()) print(`partition ${p} returned ${JSON.stringify(records)}`);
    return { overHttp, overNats, result: cluster.result() };
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
