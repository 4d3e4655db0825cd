/**
 * `sps run`'s flags → the options of a {@link Cluster}. Pure except for reading an embedded
 * source's file; every mistake is a {@link UsageError} naming the flag.
 */
import { readFileSync } from 'node:fs';
import type { InvalidOptionError } from '../errors.js';
import type { ClusterOptions } from '../driver/options.js';
import type { SparkSource } from '../spark/spark-source.js';
import type { HttpChoice } from '../transport/http-choice.js';
import type { Isolation } from '../driver/launch/launcher.js';

/** Bad command-line input: `sps` prints it with the usage and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The flags of `sps run`, as commander parses them (camel-cased). */
export interface RunFlags {
  server: string;
  export?: string;
  partitions?: number;
  config?: unknown;
  range?: { start: number; end: number; step: number };
  json?: string;
  text?: string;
  parquet?: string;
  arrow?: string;
  csv?: string;
  sql?: string;
  table?: string;
  option?: Record<string, string>;
  master?: string;
  conf?: Record<string, string>;
  sparkHome?: string;
  barrier?: boolean;
  nats?: string;
  natsCreds?: string;
  natsCa?: string;
  natsAccount?: string;
  natsSigningKey?: string;
  tls?: boolean;
  natsListen?: string;
  natsAdvertiseUrl?: string;
  natsServer?: string;
  name?: string;
  maxFailures?: number;
  startTimeout?: number;
  registerTimeout?: number;
  sparkStartTimeout?: number;
  submitTimeout?: number;
  stopTimeout?: number;
  hangTimeout?: number;
  heartbeat?: number;
  driverTimeout?: number;
  reconnectWindow?: number;
  bindHost?: string;
  advertiseHost?: string;
  http?: HttpChoice;
  isolation?: Isolation;
  env?: Record<string, string>;
  /** `--no-worker-logs` makes this false. */
  workerLogs: boolean;
}

/** Which flag sets which cluster option (beyond the server and the source). */
const FLAG_OF: [keyof ClusterOptions, keyof RunFlags][] = [
  ['partitions', 'partitions'],
  ['config', 'config'],
  ['master', 'master'],
  ['sparkConf', 'conf'],
  ['sparkHome', 'sparkHome'],
  ['barrier', 'barrier'],
  ['natsUrl', 'nats'],
  ['natsAuth', 'natsCreds'],
  ['natsAccount', 'natsAccount'],
  ['natsTls', 'natsCa'],
  ['tls', 'tls'],
  ['natsListen', 'natsListen'],
  ['natsAdvertiseUrl', 'natsAdvertiseUrl'],
  ['natsServer', 'natsServer'],
  ['name', 'name'],
  ['maxFailures', 'maxFailures'],
  ['startTimeoutMs', 'startTimeout'],
  ['registerTimeoutMs', 'registerTimeout'],
  ['sparkStartTimeoutMs', 'sparkStartTimeout'],
  ['submitTimeoutMs', 'submitTimeout'],
  ['stopTimeoutMs', 'stopTimeout'],
  ['hangTimeoutMs', 'hangTimeout'],
  ['heartbeatMs', 'heartbeat'],
  ['driverTimeoutMs', 'driverTimeout'],
  ['reconnectWindowMs', 'reconnectWindow'],
  ['bindHost', 'bindHost'],
  ['advertiseHost', 'advertiseHost'],
  ['http', 'http'],
  ['isolation', 'isolation'],
  ['env', 'env'],
];

const SOURCES = ['range', 'json', 'text', 'parquet', 'arrow', 'csv', 'sql', 'table'] as const;
/** Sources only Spark can read (the embedded launcher has no CSV or SQL reader). */
const SPARK_ONLY = new Set<string>(['csv', 'sql', 'table']);
/** Sources only the embedded launcher reads (Spark has no reader of Arrow IPC files). */
const EMBEDDED_ONLY = new Set<string>(['arrow']);
const READER_SOURCES = new Set<string>(['json', 'csv', 'parquet']);

function readFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The rows of a JSON file for the embedded launcher: one JSON array, or JSON lines (as Spark's reader takes them). */
export function jsonRows(path: string): unknown[] {
  const text = readFile('json', path);
  const parse = (s: string, where: string): unknown => {
    try {
      return JSON.parse(s) as unknown;
    } catch (err) {
      throw new UsageError(`--json: "${path}"${where} is not JSON (${(err as Error).message})`);
    }
  };
  if (text.trimStart().startsWith('[')) return parse(text, '') as unknown[];
  return text.split('\n').flatMap((line, i) => (line.trim() === '' ? [] : [parse(line, ` line ${i + 1}`)]));
}

/** The lines of a text file for the embedded launcher (as Spark's `textFile` gives them: no line ends, no last empty line). */
export function textRows(path: string): string[] {
  const lines = readFile('text', path).split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function sparkSource(kind: (typeof SOURCES)[number], flags: RunFlags): SparkSource {
  const options = flags.option ? { options: flags.option } : {};
  switch (kind) {
    case 'range':
      return { range: flags.range! };
    case 'json':
      return { json: flags.json!, ...options };
    case 'text':
      return { textFile: flags.text! };
    case 'parquet':
      return { parquet: flags.parquet!, ...options };
    case 'arrow':
      throw new UsageError('--arrow is read without Spark');
    case 'csv':
      return { csv: flags.csv!, ...options };
    case 'sql':
      return { sql: flags.sql! };
    case 'table':
      return { table: flags.table! };
  }
}

/** Builds the cluster options; `log` receives worker output unless `--no-worker-logs`. */
export function clusterOptions(flags: RunFlags, log: (line: string) => void): ClusterOptions {
  const given = SOURCES.filter((k) => flags[k] !== undefined);
  if (given.length > 1) throw new UsageError(`give one source, got ${given.map((k) => `--${k}`).join(' and ')}`);
  const kind = given[0];
  const spark = flags.master !== undefined;
  if (!spark) {
    if (kind && SPARK_ONLY.has(kind))
      throw new UsageError(
        `--${kind} needs a Spark master (--master local[2], spark://host:7077, …); the embedded launcher reads --range, --json, --text, --parquet and --arrow`,
      );
    for (const flag of ['conf', 'sparkHome', 'barrier'] as const) {
      if (flags[flag] !== undefined) throw new UsageError(`--${kebab(flag)} needs a Spark master (--master)`);
    }
  }
  if (spark && kind && EMBEDDED_ONLY.has(kind))
    throw new UsageError(`--${kind} reads Arrow IPC files in the driver, without Spark, which has no reader for them: leave out --master, or give --parquet`);
  if (flags.option !== undefined && !(spark && kind && READER_SOURCES.has(kind))) {
    throw new UsageError('--option sets Spark reader options: it goes with --master and one of --json, --csv, --parquet');
  }
  if (flags.nats === undefined) {
    if (flags.natsCreds !== undefined) throw new UsageError('--nats-creds logs in to a NATS server you run: it goes with --nats');
    if (flags.natsCa !== undefined) throw new UsageError('--nats-ca verifies a NATS server you run: it goes with --nats');
    if (flags.natsAccount !== undefined) throw new UsageError('--nats-account issues the run its users on a NATS cluster you run: it goes with --nats');
  } else {
    for (const flag of ['tls', 'natsListen', 'natsAdvertiseUrl', 'natsServer'] as const) {
      if (flags[flag] !== undefined) throw new UsageError(`--${kebab(flag)} applies to the private nats-server, not to --nats`);
    }
  }
  if ((flags.natsAccount === undefined) !== (flags.natsSigningKey === undefined))
    throw new UsageError('--nats-account and --nats-signing-key go together (see sps credentials --nats-config)');
  const o: ClusterOptions = {
    server: { module: flags.server, export: flags.export },
    log: flags.workerLogs ? log : false,
  };
  if (kind === undefined) {
    // no rows
  } else if (spark) {
    o.source = sparkSource(kind, flags);
  } else if (kind === 'range') {
    o.data = { range: flags.range! };
  } else if (kind === 'parquet') {
    o.data = { parquet: flags.parquet! };
  } else if (kind === 'arrow') {
    o.data = { arrow: flags.arrow! };
  } else if (kind === 'json') {
    o.data = jsonRows(flags.json!);
    if (!Array.isArray(o.data)) throw new UsageError(`--json: "${flags.json}" holds JSON that is not an array`);
  } else {
    o.data = textRows(flags.text!);
  }
  for (const [option, flag] of FLAG_OF) {
    const v =
      flag === 'natsCreds'
        ? flags.natsCreds && { credsFile: flags.natsCreds }
        : flag === 'natsCa'
          ? flags.natsCa && { caFile: flags.natsCa }
          : flag === 'natsAccount'
            ? flags.natsAccount && { account: flags.natsAccount, signingKeyFile: flags.natsSigningKey! }
            : flags[flag];
    if (v !== undefined) (o as unknown as Record<string, unknown>)[option] = v;
  }
  return o;
}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** An invalid cluster option, said in terms of the flag that set it (`--partitions: must be …`). */
export function usageOf(err: InvalidOptionError): UsageError {
  const top = err.option.split('.')[0]!;
  const flag = FLAG_OF.find(([option]) => option === top)?.[1] ?? (top === 'server' ? 'server' : undefined);
  const problem = err.message.slice(err.message.indexOf(': ') + 2);
  return new UsageError(flag ? `--${kebab(flag)}: ${problem}` : err.message, { cause: err });
}
