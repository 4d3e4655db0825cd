/** Lifecycle states of a partition server, in the order they are visited. */
export const PARTITION_STATES = ['initializing', 'registered', 'serving', 'draining', 'finished', 'failed'] as const;

/** A lifecycle state of a partition server. */
export type PartitionState = (typeof PARTITION_STATES)[number];

/** An error as it travels between processes. */
export interface WireError {
  /** Machine-readable code: the thrown error's own `code` when it is a string, else one such as `SPS_HANDLER_ERROR`. */
  code: string;
  /** The error's message (for a thrown non-Error, its string form). */
  message: string;
}

/** Why a worker's attempt failed, as it reports it to the driver and to its launcher. */
export interface FailureReport extends WireError {
  /** The error's stack (source-mapped for a compiled TypeScript server); absent for a failure that is no thrown error. */
  stack?: string;
  /** `false` when a retry cannot fix the failure: the partition then fails at once. Absent: retryable. */
  retryable?: boolean;
}

/** What the supervisor knows of one partition's current attempt. */
export interface Member {
  /** Index of the partition, from 0. */
  partition: number;
  /** Attempt number of the partition's current worker: 0 first, higher on each retry. */
  attempt: number;
  /** Host the partition's HTTP server is bound to (or the worker's host when it has none). */
  host: string;
  /** Port of the partition's HTTP server, `null` for servers without HTTP. */
  port: number | null;
  /** Process id of the worker, on its own host. */
  pid: number;
  /** The lifecycle state the current attempt last reported. */
  state: PartitionState;
  /** Names of the NATS endpoints the partition serves. */
  endpoints: string[];
  /** Why the attempt failed; present with state `failed` only. */
  error?: WireError;
  /** Port of the partition's direct collective socket on `host`, if it opened one. */
  peerPort?: number;
  /** SHA-256 (hex) of the certificate of that socket when it speaks TLS (on a TLS bus). */
  peerCert?: string;
}

/** A registration as sent by a partition server. */
export interface Registration {
  /** Partition of the registering worker (from the subject it registered on, not a message field). */
  partition: number;
  /** Attempt number of the worker: 0 first, higher on each retry. */
  attempt: number;
  /** Host its HTTP server is bound to (or the worker's host when it has none). */
  host: string;
  /** Port of its HTTP server, `null` for servers without HTTP. */
  port: number | null;
  /** Process id of the worker. */
  pid: number;
  /** Names of the NATS endpoints it serves. */
  endpoints: string[];
  /** Port of the attempt's direct collective socket on `host`, if it opened one. */
  peerPort?: number;
  /** SHA-256 (hex) of the certificate of that socket when it speaks TLS (on a TLS bus). */
  peerCert?: string;
}

/** Converts any thrown value into an error that can cross the wire. */
export function toWireError(err: unknown, fallbackCode = 'SPS_HANDLER_ERROR'): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : fallbackCode, message: err.message };
  }
  return { code: fallbackCode, message: String(err) };
}

/** Longest message or stack a failure report carries (the protocol's bound on each). */
const REPORT_TEXT = 16384;

/**
 * Converts any thrown value into a {@link FailureReport}: code and message as {@link toWireError},
 * the stack, and `retryable: false` when the error says a retry cannot fix it (its own `retryable`
 * property). Message and stack are cut to what the protocol carries.
 */
export function toFailureReport(err: unknown, fallbackCode: string): FailureReport {
  const { code, message } = toWireError(err, fallbackCode);
  const report: FailureReport = { code: code.slice(0, 128), message: message.slice(0, REPORT_TEXT) };
  if (err instanceof Error && typeof err.stack === 'string') report.stack = err.stack.slice(0, REPORT_TEXT);
  if ((err as { retryable?: unknown } | null)?.retryable === false) report.retryable = false;
  return report;
}
