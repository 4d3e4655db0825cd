/**
 * Example 3, HTTP and WebSocket on every partition (native uWebSockets.js): a JSON route that
 * filters the partition's rows by a query parameter, and a WebSocket that streams them in batches.
 * Clients talk to a partition directly, at the host and port its member record gives.
 *
 *     npx tsx examples/03-http-websocket.ts
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Cluster, HttpPartitionServer } from 'spark-partition-server';

/** The server: `GET /app/above?min=n` and `ws /app/stream` (send a batch size, get the rows in batches, then "end"). */
export default new HttpPartitionServer<number>({
  // Without an `init`, the rows are collected into `server.rows`.
  routes: (router, ctx, server) => {
    router.get('/above', (req) => {
      const min = Number(req.query.get('min') ?? 0);
      return { partition: ctx.partition, values: server.rows.filter((v) => v > min) };
    });
    router.ws('/stream', {
      message: (ws, data) => {
        const size = Math.max(1, Number(data) || 10);
        for (let i = 0; i < server.rows.length; i += size) ws.send(JSON.stringify(server.rows.slice(i, i + size)));
        ws.send('end');
      },
    });
  },
});

/** Reads one partition's rows over its WebSocket, `size` at a time. */
function stream(url: string, size: number): Promise<number[][]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const batches: number[][] = [];
    ws.on('open', () => ws.send(String(size)));
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text !== 'end') return void batches.push(JSON.parse(text) as number[]);
      ws.close();
      resolve(batches);
    });
    ws.on('error', reject);
  });
}

/** Runs the example; `print` gets its lines. Returns what the test checks. */
export async function main(print: (line: string) => void = console.log) {
  const cluster = new Cluster<number>({ server: new URL(import.meta.url), data: { range: { end: 40 } }, partitions: 2 });
  await cluster.start();
  try {
    const above: Record<number, number[]> = {};
    const batches: Record<number, number[][]> = {};
    for (const [p, { host, port }] of cluster.hosts) {
      const res = (await (await fetch(`http://${host}:${port}/app/above?min=15`)).json()) as { values: number[] };
      above[p] = res.values;
      print(`partition ${p}: GET /app/above?min=15 → ${res.values.join(',') || '(none)'}`);
      batches[p] = await stream(`ws://${host}:${port}/app/stream`, 8);
      print(`partition ${p}: ws /app/stream in batches of 8 → ${batches[p]!.map((b) => b.length).join(' + ')} rows`);
    }
    return { above, batches };
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
