import type { Cluster, MemberEvent, ProgressEvent, SparkEvent, StateEvent } from '../../src/index.js';

/** Every event of a cluster but Spark's stage progress, as short strings, in the order they came. */
export function recordEvents(cluster: Cluster): string[] {
  const seen: string[] = [];
  cluster.on('state', (e: StateEvent) => seen.push(`state ${e.previous}→${e.state}${e.error ? ` (${e.error.constructor.name})` : ''}`));
  cluster.on('member', (e: MemberEvent) =>
    seen.push(
      `p${e.partition} a${e.attempt} ${e.kind}${e.previousAttempt !== undefined ? ` from a${e.previousAttempt}` : ''}${e.kind === 'lost' ? ` after ${e.failures}` : ''}`,
    ),
  );
  cluster.on('progress', (e: ProgressEvent) => seen.push(`${e.phase} ${e.done}/${e.total}`));
  cluster.on('spark', (e: SparkEvent) => void (e.type !== 'stage' && seen.push(`spark ${e.type}`)));
  return seen;
}
