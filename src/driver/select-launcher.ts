import type { ResolvedOptions } from './options.js';
import { EmbeddedLauncher } from './launch/embedded-launcher.js';
import { partitionSource } from './launch/data-source.js';
import type { Launcher } from './launch/launcher.js';
import { SparkLauncher } from '../spark/spark-launcher.js';

/** Whether a run's partitions start on this machine, from the embedded launcher. */
function launchesEmbedded(opts: Pick<ResolvedOptions<unknown, unknown>, 'launcher' | 'master' | 'spark'>): boolean {
  return !opts.launcher && opts.master === undefined && opts.spark === undefined;
}

/** Chooses the launcher for a cluster run: the user's own, Spark's (options master / spark), or the embedded one. */
export async function selectLauncher(opts: ResolvedOptions<unknown, unknown>): Promise<Launcher> {
  if (opts.launcher) return opts.launcher;
  if (!launchesEmbedded(opts)) return new SparkLauncher(opts);
  return new EmbeddedLauncher(await partitionSource(opts.data, opts.partitions, opts.partitionBy));
}
