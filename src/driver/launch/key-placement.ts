import { InvalidOptionError, SparkPartitionServerError } from '../../errors.js';
import { partitionOfKey, type PartitionKey } from '../../protocol/key-partition.js';

/**
 * Option `partitionBy`: a row field whose value is the key, or (embedded launcher only) a function
 * of the row. The function is typed as a method so that a cluster of typed rows still is a
 * `Cluster<unknown>` (method parameters are bivariant).
 */
export type PartitionBy<Row = unknown> = string | { key(row: Row): PartitionKey }['key'];

/** The key of `row` (the `index`-th row of the data) by `partitionBy`; errors name the row and the field. */
function keyOf(row: unknown, index: number, partitionBy: PartitionBy): unknown {
  if (typeof partitionBy === 'function') {
    try {
      return partitionBy(row);
    } catch (err) {
      throw new InvalidOptionError('partitionBy', `the function threw for row ${index}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new InvalidOptionError(
      'partitionBy',
      `row ${index} is ${row === null ? 'null' : Array.isArray(row) ? 'an array' : `a ${typeof row}`}, not an object with field "${partitionBy}"`,
    );
  }
  if (!Object.hasOwn(row, partitionBy)) throw new InvalidOptionError('partitionBy', `row ${index} has no field "${partitionBy}"`);
  return (row as Record<string, unknown>)[partitionBy];
}

/**
 * Places each row on the partition that owns its key (`partitionOfKey`), keeping the rows' order
 * within a partition. A row without a usable key fails the whole placement, naming the row.
 */
export function placeByKey(rows: Iterable<unknown>, partitions: number, partitionBy: PartitionBy): unknown[][] {
  const placed: unknown[][] = Array.from({ length: partitions }, () => []);
  let index = 0;
  for (const row of rows) {
    const key = keyOf(row, index, partitionBy);
    let p: number;
    try {
      p = partitionOfKey(key, partitions);
    } catch (err) {
      const what = typeof partitionBy === 'function' ? 'the key the function returned' : `field "${partitionBy}"`;
      throw new InvalidOptionError('partitionBy', `row ${index}: ${what}: ${(err as SparkPartitionServerError).message}`);
    }
    placed[p]!.push(row);
    index++;
  }
  return placed;
}
