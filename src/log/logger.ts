import { pino } from 'pino';
import { isMainThread } from 'node:worker_threads';
import { formatLogLine } from './log-format.js';

/**
 * The one logger of the driver and the workers: pino, writing one JSON object per line to stderr,
 * with levels and fields (`cluster`, `partition`, `attempt`, `component`). A worker writes its
 * records to its stderr; its launcher reads them back and logs them again on the driver's logger,
 * under the partition and attempt it launched (never the ones a line claims), so one logger holds
 * the whole run. Output a worker prints itself (`console.log`) arrives as `info` records with
 * `stream: 'output'`.
 */

/** The levels, lowest first; `silent` logs nothing. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One logging method: `(fields, message)` or `(message)`, as pino's. */
export type LogMethod = (fieldsOrMessage: object | string, message?: string) => void;

/**
 * What the library logs to: any pino-compatible logger (pino itself, or an object with these
 * methods). `child(bindings)` returns a logger whose records all carry `bindings`.
 */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  child(bindings: Record<string, unknown>): Logger;
}

/**
 * The library's own logger: pino at `level`, JSON lines on stderr, written synchronously (a worker
 * may exit right after). In a partition run as a thread, on the thread's own `process.stderr`,
 * which its host reads apart from every other thread's (fd 2 is the whole process's).
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, isMainThread ? pino.destination({ fd: 2, sync: true }) : process.stderr);
}

/** A logger that drops everything (the `log: false` option). */
export const SILENT_LOGGER: Logger = createSilent();

function createSilent(): Logger {
  const drop: LogMethod = () => {};
  const silent: Logger = { debug: drop, info: drop, warn: drop, error: drop, child: () => silent };
  return silent;
}

/**
 * A logger that renders each record as text lines for a line function (the `log` option): the
 * message, prefixed by who it is about, `[sps <cluster> p<partition>/a<attempt>]`,
 * `[sps <cluster> <component>]` or `[sps <cluster>]`, one line per line of the message.
 */
export function lineLogger(write: (line: string) => void, bindings: Record<string, unknown> = {}): Logger {
  const method: LogMethod = (fieldsOrMessage, message) => {
    const text = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '');
    const b = bindings;
    const who = [b.cluster ?? b.app, b.partition !== undefined ? `p${String(b.partition)}/a${String(b.attempt)}` : b.component].filter((x) => x !== undefined);
    const prefix = `[sps${who.map((x) => ` ${String(x)}`).join('')}]`;
    for (const line of text.split('\n')) write(`${prefix} ${line}`);
  };
  return { debug: method, info: method, warn: method, error: method, child: (more) => lineLogger(write, { ...bindings, ...more }) };
}

const PINO_LEVELS: Record<number, Exclude<LogLevel, 'silent'>> = { 10: 'debug', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'error' };
/** Fields of a worker's record that its launcher states itself, or that pino adds to every line. */
const OWN_FIELDS = new Set(['level', 'msg', 'time', 'pid', 'hostname', 'cluster', 'partition', 'attempt']);

/** A line of worker output as a record: its pino JSON record, or `undefined` for anything else. */
export function parseRecord(line: string): { level: Exclude<LogLevel, 'silent'>; msg: string; fields: Record<string, unknown> } | undefined {
  if (!line.startsWith('{')) return undefined;
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return undefined;
  const r = rec as Record<string, unknown>;
  const level = typeof r.level === 'number' ? PINO_LEVELS[r.level] : undefined;
  if (!level) return undefined;
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (!OWN_FIELDS.has(k)) fields[k] = v;
  if (typeof r.pid === 'number') fields.workerPid = r.pid;
  return { level, msg: typeof r.msg === 'string' ? r.msg : formatLogLine([r.msg]), fields };
}

/** The text of a worker output line: its record's message, or the line itself. */
export function lineText(line: string): string {
  return parseRecord(line)?.msg ?? line;
}

/**
 * Logs one line of a worker's output on `logger` (bound to the worker's partition and attempt by
 * its launcher): a record at its own level with its fields, or a plain line as `info` with
 * `stream: 'output'`.
 */
export function logWorkerLine(logger: Logger, line: string): void {
  const rec = parseRecord(line);
  if (rec) logger[rec.level](rec.fields, rec.msg);
  else logger.info({ stream: 'output' }, line);
}

/**
 * Routes a line of spark-submit's output: the PySpark runner tags each worker line with
 * `[sps <cluster> p<partition>/a<attempt>]`, which names the worker it launched; other lines are
 * Spark's and the runner's own (`component: 'spark'`).
 */
export function logSparkLine(logger: Logger, line: string): void {
  const m = /^\[sps ([A-Za-z0-9_-]+) p(\d+)\/a(\d+)\] ?(.*)$/.exec(line);
  if (m) logWorkerLine(logger.child({ cluster: m[1], partition: Number(m[2]), attempt: Number(m[3]) }), m[4]!);
  else logger.info({ component: 'spark' }, line.replace(/^\[sps [^\]]*\] ?/, ''));
}

/** The level a worker logs at: the option, else the user's logger's own level when it has one, else `info`. */
export function workerLevel(level: LogLevel | undefined, logger: Logger | undefined): LogLevel {
  const own = (logger as { level?: unknown } | undefined)?.level;
  return level ?? (typeof own === 'string' && (LOG_LEVELS as readonly string[]).includes(own) ? (own as LogLevel) : 'info');
}

/**
 * `logger`, with every record also handed to `observe` with the bindings of the child it came
 * through (so `partition` and `attempt` for a worker's): the dashboard keeps its log tails from it.
 */
export function tappedLogger(
  logger: Logger,
  observe: (bindings: Readonly<Record<string, unknown>>, message: string) => void,
  bindings: Record<string, unknown> = {},
): Logger {
  const tap =
    (level: Exclude<LogLevel, 'silent'>): LogMethod =>
    (fieldsOrMessage, message) => {
      if (typeof fieldsOrMessage === 'string') logger[level](fieldsOrMessage);
      else logger[level](fieldsOrMessage, message);
      observe(bindings, typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? ''));
    };
  return {
    debug: tap('debug'),
    info: tap('info'),
    warn: tap('warn'),
    error: tap('error'),
    child: (more) => tappedLogger(logger.child(more), observe, { ...bindings, ...more }),
  };
}
