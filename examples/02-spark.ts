/**
 * Example 2, on Apache Spark: the same servers on the partitions of a Spark SQL query, run by
 * Spark as tasks (`master: 'local[2]'` here; a `spark://` URL for a standalone cluster). Each
 * partition sums its rows; the driver asks every partition at once, then keeps the results as a
 * Spark dataset it can count and collect.
 *
 *     npx tsx examples/02-spark.ts [master]
 */
import { fileURLToPath } from 'node:url';
import { Cluster, PartitionServer, SparkApplication } from 'spark-partition-server';

/** One row of the query below. */
interface Row {
  id: number;
  square: number;
}

/** The server, made once per partition: `sum` answers the partition's sum of squares; the result is one record per partition. */
export default function sumOfSquares() {
  const rows: Row[] = [];
  const sum = () => rows.reduce((a, r) => a + r.square, 0);
  return new PartitionServer<Row>({
    init: async (source) => {
      for await (const r of source) rows.push(r);
    },
    endpoints: { sum },
    result: (ctx) => [{ partition: ctx.partition, rows: rows.length, sum: sum() }],
  });
}

/**
 * Runs the example on `master`; `print` gets its lines, `log` the Spark application's output
 * (default: standard error; `false` drops it). Returns what the test checks.
 */
export async function main(
  master = 'local[2]',
  print: (line: string) => void = console.log,
  sparkConf: Record<string, string> = {},
  log?: ((line: string) => void) | false,
) {
  // An application of our own that outlives the cluster: the results stay in it as a dataset.
  await using app = await SparkApplication.start({ master, conf: sparkConf, log });
  const cluster = new Cluster<Row>({
    server: new URL(import.meta.url),
    spark: app,
    source: { sql: 'SELECT id, id * id AS square FROM range(100)' },
    partitions: 2,
    cacheResult: true,
  });
  await cluster.start();
  try {
    print(`Spark (${master}) runs ${cluster.partitions} partition servers: pids ${cluster.workerPids.join(', ')}`);
    const sums = await cluster.requestAll<number>('sum');
    let total = 0;
    for (const [p, reply] of sums) {
      if (!reply.ok) throw new Error(`partition ${p}: ${reply.error.message}`);
      print(`partition ${p}: sum of squares ${reply.value}`);
      total += reply.value;
    }
    print(`total ${total}`);
    await cluster.stop();
    // The results as a dataset in the application: count, collect, save, or query with Spark SQL.
    await using dataset = cluster.resultDataset!;
    const records = await dataset.collect();
    print(`result dataset: ${await dataset.count()} records: ${JSON.stringify(records)}`);
    return { total, records };
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv[2]);
