/**
 * What a partition counts of its collective traffic, and a call's settings from its options (their
 * schema and check, collective-options-schema.ts, load with the first call given any).
 */
import type { CollectiveTransport } from './transport-choice.js';
import type { CollectiveOptions } from './collective-options-schema.js';

export type { CollectiveOptions } from './collective-options-schema.js';

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
/** The options' schema and check, loaded with the first call given options. */
let schema: typeof import('./collective-options-schema.js') | undefined;

/**
 * Checks the options of collective `op` (see `checkCollectiveOptions`): at once when it has none
 * or their schema is loaded, else once it is (the returned promise).
 * @throws InvalidOptionError for what is not an options object or a field it does not have; CollectiveError (`SPS_COLLECTIVE_ARGUMENT`) for a wrong value.
 */
export function checkCallOptions(op: string, opts: CollectiveOptions): Promise<void> | undefined {
  if (schema) return void schema.checkCollectiveOptions(op, opts);
  // A call without options (the default `{}`) has nothing to check: it loads nothing.
  if (typeof opts === 'object' && opts !== null && Object.keys(opts).length === 0) return undefined;
  return loadOptionsSchema().then(() => schema!.checkCollectiveOptions(op, opts));
}

/** Loads the options' schema now, so that no later call waits for it (a test on a simulated clock). */
export async function loadOptionsSchema(): Promise<void> {
  schema ??= await import('./collective-options-schema.js');
}

/** The timeout and transport of a call with checked options `opts` (`defaultTransport` when it names none). */
export function callSettings(opts: CollectiveOptions, defaultTransport: CollectiveTransport): { timeoutMs: number; transport: CollectiveTransport } {
  return { timeoutMs: opts.timeoutMs ?? DEFAULT_COLLECTIVE_TIMEOUT_MS, transport: opts.transport ?? defaultTransport };
}
