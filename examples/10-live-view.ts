/**
 * Example 10, a live view: a Spark table served by key (`partitionBy`) and kept current from a
 * stream (`updates`). A Python publisher (`10-live-view-publisher.py`, nats-py) sends price
 * changes with the cluster's publisher credentials while this program reads prices by key; each
 * change reaches the partition owning its SKU, in order (docs/updates.md).
 *
 *     npx tsx examples/10-live-view.ts [master] [python]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster, PartitionServer, SparkApplication } from 'spark-partition-server';

/** One row of the table below. */
interface Price {
  sku: string;
  price: number;
}

/** The server, made once per partition: its SKUs' prices, loaded from Spark and kept current by updates. */
export default function priceView() {
  const prices = new Map<string, number>();
  return new PartitionServer<Price>({
    init: async (source) => {
      for await (const r of source) prices.set(r.sku, r.price);
    },
    update: (u) => void prices.set(u.key, (u.value as { price: number }).price),
    endpoints: { price: (p) => prices.get((p as { sku: string }).sku) ?? null },
  });
}

/** Runs the publisher with `count` changes, its credentials on stdin; resolves with what it printed. */
function publish(python: string, count: number, credentials: unknown): Promise<{ published: number; lastSeq: number }> {
  const script = fileURLToPath(new URL('./10-live-view-publisher.py', import.meta.url));
  const child = spawn(python, [script, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(`${JSON.stringify(credentials)}\n`);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`the publisher exited with code ${code}`))));
  });
}

/**
 * Runs the example on `master` with the publisher on `python`; `print` gets its lines, `log` the
 * Spark application's output. Returns every SKU's final price, and the prices of `sku-7` read while
 * the publisher ran.
 */
export async function main(
  master = 'local[2]',
  python = 'python3',
  print: (line: string) => void = console.log,
  sparkConf: Record<string, string> = {},
  log?: ((line: string) => void) | false,
) {
  const changes = 1000;
  await using app = await SparkApplication.start({ master, conf: sparkConf, log });
  const cluster = new Cluster<Price>({
    server: new URL(import.meta.url),
    spark: app,
    source: { sql: "SELECT concat('sku-', id) AS sku, CAST(id AS DOUBLE) AS price FROM range(100)" },
    partitions: 2,
    partitionBy: 'sku',
    updates: 'prices.*',
  });
  await cluster.start();
  try {
    print(`sku-7 costs ${await cluster.requestByKey('sku-7', 'price', { sku: 'sku-7' })} (partition ${cluster.partitionOf('sku-7')})`);
    const publishing = publish(python, changes, cluster.credentials('publisher'));
    // Reads by key while the changes arrive: each answer is the price as of that moment.
    const seen: number[] = [];
    let done = false;
    void publishing.finally(() => (done = true)).catch(() => {});
    while (!done) seen.push((await cluster.requestByKey<number>('sku-7', 'price', { sku: 'sku-7' }))!);
    const { published, lastSeq } = await publishing;
    print(`the publisher stored ${published} changes (last sequence ${lastSeq}); sku-7 read ${seen.length} times meanwhile`);
    // Stored is not yet applied: read until the last change of each SKU shows.
    const final: Record<string, number> = {};
    for (let k = 0; k < 100; k++) {
      const sku = `sku-${k}`;
      const want = 1000 + (changes - 100 + k);
      let price: number | null;
      do price = await cluster.requestByKey<number>(sku, 'price', { sku });
      while (price !== want);
      final[sku] = price;
    }
    print(`every SKU shows its last change: sku-7 costs ${final['sku-7']}`);
    return { final, seen };
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv[2], process.argv[3]);
