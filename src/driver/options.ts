/**
 * Resolving a {@link Cluster}'s options: the schema (options-schema.ts) checks each option and
 * gives the defaults; what one option needs of another is checked here.
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, lineLogger, SILENT_LOGGER, workerLevel, type Logger } from '../log/logger.js';
import { InvalidOptionError } from '../errors.js';
import { validateSparkSource } from '../spark/spark-source.js';
import { checkUpdatesSubject } from '../protocol/updates.js';
import type { Static } from '@sinclair/typebox';
import { checkOptions, withDefaults } from '../option-schema.js';
import { ClusterOptionsSchema, NatsAccountSchema, type ClusterOptions, type ResolvedOptions, type ServerRef } from './options-schema.js';

export type { ClusterOptions, NatsAccountOption, NatsAuthOption, ResolvedOptions, ServerRef } from './options-schema.js';
export { ClusterOptionsSchema } from './options-schema.js';

/** Option `server` as the module path (or URL) workers import and the export to use. */
function resolveServer(ref: ServerRef): { module: string; export: string } {
  const toPath = (m: string | URL): string => {
    if (m instanceof URL) return m.protocol === 'file:' ? fileURLToPath(m) : m.href;
    if (m.startsWith('file:')) return fileURLToPath(m);
    return isAbsolute(m) ? m : resolve(m);
  };
  if (typeof ref === 'string' || ref instanceof URL) return { module: toPath(ref), export: 'default' };
  return { module: toPath(ref.module), export: ref.export ?? 'default' };
}

/** Option `config` as JSON, `''` when absent. */
function configJson(config: unknown): string {
  if (config === undefined) return '';
  let json: string | undefined;
  try {
    json = JSON.stringify(config);
  } catch (err) {
    throw new InvalidOptionError('config', `must be JSON-serializable (${(err as Error).message})`);
  }
  if (json === undefined) throw new InvalidOptionError('config', 'must be JSON-serializable');
  return json;
}

/** Validates cluster options and applies defaults; errors name the option. */
export function resolveOptions<Row, Config>(given: ClusterOptions<Row, Config>): ResolvedOptions<Row, Config> {
  checkOptions(ClusterOptionsSchema, given);
  checkBusOptions(given);
  checkSparkOptions(given);
  checkPartitionBy(given);
  checkIsolation(given);
  const o = withDefaults(ClusterOptionsSchema, given);
  const server = resolveServer(o.server);
  return {
    ...o,
    serverModule: server.module,
    serverExport: server.export,
    data: given.data,
    config: given.config,
    configJson: configJson(o.config),
    partitionBy: given.partitionBy,
    natsUrl: resolveNatsUrl(o.natsUrl),
    natsAccount: o.natsAccount && withDefaults(NatsAccountSchema, o.natsAccount),
    logger: resolveLogger(o),
    logLevel: workerLevel(o.logLevel, o.logger),
    http: o.http ?? (o.isolation === 'thread' ? 'node' : 'auto'),
    updates: o.updates === undefined ? undefined : checkUpdatesSubject(o.updates),
  };
}

/** Options that passed the schema, before defaults: what the user gave. */
type Checked = Static<typeof ClusterOptionsSchema>;

/** What option `isolation` 'thread' (and `threadHeapMb`, which only it uses) needs of the others. */
function checkIsolation(o: Checked): void {
  if (o.spareWorker && (o.isolation === 'thread' || o.master !== undefined || o.spark !== undefined)) {
    throw new InvalidOptionError('spareWorker', 'applies to partitions run as processes on this machine (the embedded launcher, isolation "process")');
  }
  if (o.isolation !== 'thread') {
    if (o.threadHeapMb !== undefined) throw new InvalidOptionError('threadHeapMb', 'applies to isolation "thread" only');
    return;
  }
  if (o.launcher !== undefined) {
    throw new InvalidOptionError('isolation', '"thread" runs on the embedded and Spark launchers only (your own launcher runs a process per partition)');
  }
  if (o.http === 'uws') {
    throw new InvalidOptionError(
      'http',
      '"uws" cannot serve partitions run as threads (isolation "thread"): a uWebSockets.js app open in a thread that dies aborts its whole host; use "node" or "auto"',
    );
  }
}

/** Option `partitionBy`: a field name anywhere, a function on the embedded launcher only. */
function checkPartitionBy(o: Checked): void {
  if (o.partitionBy === undefined) return;
  if (o.launcher !== undefined) throw new InvalidOptionError('partitionBy', 'applies to the embedded and Spark launchers, not to a launcher of your own');
  if (typeof o.partitionBy === 'function' && (o.master !== undefined || o.spark !== undefined)) {
    throw new InvalidOptionError('partitionBy', 'on Spark must name a column (a string): a function of the row cannot run in the Spark runner');
  }
}

/** The run's logger: the user's, else text lines to `log`, else nothing (`log: false`), else pino on stderr. */
function resolveLogger(o: Checked): Logger {
  if (o.logger !== undefined) return o.logger;
  if (o.log === false) return SILENT_LOGGER;
  if (o.log) return lineLogger(o.log);
  return createLogger(o.logLevel);
}

/** Option `natsUrl` as one comma-separated list of URLs, each checked to be non-empty. */
function resolveNatsUrl(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const urls = (typeof v === 'string' ? [v] : v).flatMap((p) => p.split(',')).map((u) => u.trim());
  if (urls.some((u) => u === '' || /\s/.test(u))) throw new InvalidOptionError('natsUrl', 'has an empty entry or one with spaces');
  return urls.join(',');
}

/** Which bus options go together; errors name the option, never a secret's value. */
function checkBusOptions(o: Checked): void {
  const userRun = o.natsUrl !== undefined;
  for (const k of ['natsAuth', 'natsAccount', 'natsTls'] as const) {
    if (o[k] !== undefined && !userRun)
      throw new InvalidOptionError(k, 'applies to a NATS server you run (option natsUrl); the private server makes its own credentials');
  }
  for (const k of ['natsListen', 'natsAdvertiseUrl', 'tls', 'natsServer'] as const) {
    if (o[k] !== undefined && userRun) throw new InvalidOptionError(k, 'applies to the private nats-server, not to natsUrl');
  }
  if (o.natsAccount !== undefined && o.natsAuth !== undefined) {
    throw new InvalidOptionError('natsAccount', 'goes without natsAuth: the run logs in as the users it issues');
  }
  if (o.natsTls && (o.natsTls.certFile === undefined) !== (o.natsTls.keyFile === undefined)) {
    throw new InvalidOptionError('natsTls', 'certFile and keyFile go together');
  }
}

/** Which Spark options go together; errors name the option. */
function checkSparkOptions(o: Checked): void {
  const spark = o.master !== undefined || o.spark !== undefined;
  if (o.master !== undefined && o.spark !== undefined)
    throw new InvalidOptionError('spark', 'give either master (a new Spark application) or spark (a running one), not both');
  if (o.launcher !== undefined && spark) throw new InvalidOptionError('launcher', 'cannot be combined with master or spark');
  if (!spark) {
    for (const k of ['source', 'sparkConf', 'sparkHome', 'cacheResult', 'barrier', 'format'] as const) {
      if (o[k] !== undefined) throw new InvalidOptionError(k, 'needs a Spark master (option master) or application (option spark)');
    }
  }
  if (o.spark !== undefined) {
    for (const k of ['sparkConf', 'sparkHome'] as const) {
      if (o[k] !== undefined)
        throw new InvalidOptionError(k, 'applies to an application started on master; the spark application was configured when it started');
    }
  }
  if (o.source !== undefined) {
    if (o.data !== undefined) throw new InvalidOptionError('source', 'give either data or source, not both');
    validateSparkSource(o.source);
  }
}
