import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { ServerModuleError } from '../errors.js';
import { isPartitionServer, isPartitionServerClass, type PartitionServer } from './partition-server.js';

/** Turns a module path or URL into an importable URL string. */
export function moduleUrl(module: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

/**
 * Imports the user's server module and returns the partition server it exports: an instance, a
 * class (constructed without arguments), or a factory called with the cluster's config. Errors
 * name `source`: the module as the user named it (`module` may be its compiled form).
 */
export async function loadServer(module: string, exportName: string, config: unknown, source = module): Promise<PartitionServer> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(moduleUrl(module))) as Record<string, unknown>;
  } catch (err) {
    throw new ServerModuleError(source, `could not be imported: ${(err as Error).message}`);
  }
  if (!(exportName in mod)) {
    throw new ServerModuleError(source, `has no export "${exportName}" (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  const value = mod[exportName];
  if (isPartitionServer(value)) return value;
  if (isPartitionServerClass(value)) return new value();
  if (typeof value === 'function') {
    const made = await (value as (config: unknown) => unknown)(config);
    if (isPartitionServer(made)) return made;
    throw new ServerModuleError(source, `export "${exportName}" is a function that did not return a PartitionServer`);
  }
  throw new ServerModuleError(source, `export "${exportName}" is not a PartitionServer, a PartitionServer class, or a factory`);
}
