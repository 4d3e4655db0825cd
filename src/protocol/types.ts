/** Lifecycle states of a partition server, in the order they are visited. */
export const PARTITION_STATES = ['initializing', 'registered', 'serving', 'draining', 'finished', 'failed'] as const;

/** A lifecycle state of a partition server. */
export type PartitionState = (typeof PARTITION_STATES)[number];

/** An error as it travels between processes. */
export interface WireError {
  code: string;
  message: string;
}

/** What the supervisor knows of one partition's current attempt. */
export interface Member {
  partition: number;
  attempt: number;
  /** Host the partition's HTTP server is bound to (or the worker's host when it has none). */
  host: string;
  /** Port of the partition's HTTP server, `null` for servers without HTTP. */
  port: number | null;
  pid: number;
  state: PartitionState;
  /** Names of the NATS endpoints the partition serves. */
  endpoints: string[];
  error?: WireError;
  /** Port of the partition's direct collective socket on `host`, if it opened one. */
  peerPort?: number;
}

/** A registration as sent by a partition server. */
export interface Registration {
  partition: number;
  attempt: number;
  host: string;
  port: number | null;
  pid: number;
  endpoints: string[];
  /** Port of the attempt's direct collective socket on `host`, if it opened one. */
  peerPort?: number;
}

/** Converts any thrown value into an error that can cross the wire. */
export function toWireError(err: unknown, fallbackCode = 'SPS_HANDLER_ERROR'): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : fallbackCode, message: err.message };
  }
  return { code: fallbackCode, message: String(err) };
}
