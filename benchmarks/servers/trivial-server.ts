/**
 * The same trivial server as `trivial-root-server.ts`, importing the `spark-partition-server/server`
 * entry instead of the package root: what a worker loads when its server needs nothing of the driver.
 */
import { PartitionServer } from '../../src/server.js';

export default new PartitionServer({ endpoints: { pid: () => process.pid } });
