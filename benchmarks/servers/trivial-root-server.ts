/**
 * The smallest useful partition server, importing the package root as the examples do: keeps
 * nothing of its rows and answers `pid`. The worker-footprint benchmark measures what loading it
 * (and the worker runtime) costs.
 */
import { PartitionServer } from '../../src/index.js';

export default new PartitionServer({ endpoints: { pid: () => process.pid } });
