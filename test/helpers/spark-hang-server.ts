import { PartitionServer } from '../../src/index.js';

/** A server whose init never ends: its cluster can only start by timing out. */
export default new PartitionServer({ init: () => new Promise<void>(() => setInterval(() => {}, 1000)) });
