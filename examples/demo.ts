/**
 * The seed's demo: 1000 numbers in 2 partitions, an HTTP server on each, partition 0's list
 * fetched over HTTP and over NATS, then stop and collect what each partition returned.
 */
import { DemoCluster } from './demo-cluster.js';

const cluster = new DemoCluster({
  server: new URL('./demo-server.ts', import.meta.url),
  data: { range: { end: 1000 } },
  partitions: 2,
});

const t0 = performance.now();
await cluster.start();
console.log(`started ${cluster.partitions} partitions in ${(performance.now() - t0).toFixed(0)} ms`);
for (const [p, { host, port }] of cluster.hosts) console.log(`  partition ${p} serves on http://${host}:${port}`);

const overHttp = await cluster.getPartitionList(0);
console.log(`partition 0 over HTTP: ${overHttp.length} numbers: ${overHttp.slice(0, 5).join(',')},...,${overHttp.at(-1)}`);

const overNats = await cluster.request<number[]>(0, 'get_list');
console.log(`partition 0 over NATS: ${overNats.length} numbers: ${overNats.slice(0, 5).join(',')},...,${overNats.at(-1)}`);
console.log(`same list both ways: ${JSON.stringify(overHttp) === JSON.stringify(overNats)}`);

await cluster.stop();
for (const [p, records] of cluster.result()) console.log(`partition ${p} returned ${JSON.stringify(records)}`);
