/**
 * The options of one collective call, what a partition counts of its collective traffic, and the
 * check of a call's options (pure: it throws or returns the call's settings).
 */
import { CollectiveError } from '../../errors.js';
import { checkOptionsBag, fieldsOf } from '../../option-fields.js';
import { COLLECTIVE_TRANSPORTS, type CollectiveTransport } from './transport-choice.js';

/** Options of one collective call. */
export interface CollectiveOptions {
  /** How long the call may take, waiting for peers included (default 30 s). */
  timeoutMs?: number;
  /** Aborts the call: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * `allReduce` only: how a large typed array (64 KB and up, built-in op) travels. `'direct'` (the
   * default): reduce-scatter straight to each block's owner, then an all-gather; `'ring'`: a ring
   * of n−1 + n−1 neighbour steps. Every partition must choose the same.
   */
  algorithm?: 'direct' | 'ring';
  /**
   * `allReduce` only, for a typed array: write the result into the value passed, and return that
   * same array (default `false`: a new array). Saves allocating the result on every call of an
   * iterative computation; the array must not be touched until the call settles.
   */
  inPlace?: boolean;
  /**
   * How this partition sends the call's data: `'nats'` through nats-server, `'direct'` over the
   * partitions' own authenticated TCP sockets (TLS, both ends pinned, on a TLS bus), `'auto'`
   * direct in groups of up to 8 partitions, else for values of 64 KB and more. Each partition chooses for what it sends (a
   * receiver takes both); default: the cluster's `collectiveTransport`, else `'auto'`.
   */
  transport?: CollectiveTransport;
}

/** The field names of {@link CollectiveOptions}. */
const COLLECTIVE_OPTION_FIELDS = fieldsOf<CollectiveOptions>({ timeoutMs: true, signal: true, algorithm: true, inPlace: true, transport: true });

/** What a partition counted of the collective traffic it refused. */
export interface CollectiveStats {
  /** The generation this partition is in (-1 before it registered). */
  generation: number;
  /** Messages from an older generation, a replaced attempt, a finished call, or repeated (dropped). */
  stale: number;
  /** Messages that did not decode or did not fit their call (dropped). */
  malformed: number;
  /**
   * Messages dropped because too much was held for calls this partition had not made yet (the
   * ones needed latest go first), or because they were for a generation more than one ahead.
   */
  overflow: number;
  /** Chunks held now for calls this partition has not reached, and their cost in bytes (payload and overhead). */
  heldChunks: number;
  heldBytes: number;
  /** Bytes of collective data this partition sent over direct sockets (the rest went over NATS). */
  directBytesSent: number;
  /** Sockets to this partition's direct port closed for want of a valid, unused ticket. */
  refusedSockets: number;
}

/** Default timeout of a collective call. */
export const DEFAULT_COLLECTIVE_TIMEOUT_MS = 30_000;
/** Default largest chunk on NATS (below the server's max_payload, which caps it further). */
export const DEFAULT_CHUNK_BYTES = 512 * 1024;
/**
 * Checks the options of collective `op` (unknown fields named with the nearest known one, then
 * values) and resolves its timeout and transport (`defaultTransport` when it names none).
 * @throws InvalidOptionError for an unknown field; CollectiveError (`SPS_COLLECTIVE_ARGUMENT`) for a wrong value.
 */
export function callSettings(
  op: string,
  opts: CollectiveOptions,
  defaultTransport: CollectiveTransport,
): { timeoutMs: number; transport: CollectiveTransport } {
  checkOptionsBag(opts, COLLECTIVE_OPTION_FIELDS, `ctx.${op.split('-')[0]}`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COLLECTIVE_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', op, `timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  const transport = opts.transport ?? defaultTransport;
  if (!COLLECTIVE_TRANSPORTS.includes(transport)) {
    throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', op, `transport must be 'nats', 'direct' or 'auto', got ${String(transport)}`);
  }
  return { timeoutMs, transport };
}
