import type { RequestError } from '../errors.js';
import { checkOptionsBag, fieldsOf } from '../option-fields.js';

/** Options of one call: `timeoutMs` bounds it, and `signal` abandons it (it then rejects with the signal's reason). */
export interface CallOptions {
  /** Ms before the call rejects. Default: option `requestTimeoutMs` for requests, 30000 ms for `waitForPeers`. */
  timeoutMs?: number;
  /** Abandons the call when it aborts; an already aborted signal rejects at once. */
  signal?: AbortSignal;
}

/** The field names of {@link CallOptions}. */
const CALL_OPTION_FIELDS = fieldsOf<CallOptions>({ timeoutMs: true, signal: true });

/**
 * How {@link RequestAllOptions.rejoin} asks a partition again whose attempt failed or was replaced
 * before it answered (an endpoint that calls `ctx.elasticRun`: the new attempt joins the survivors' restore).
 */
export interface RejoinOptions {
  /** Ms to wait, each time, for the partition's new attempt to serve. Default: option `startTimeoutMs`. */
  timeoutMs?: number;
  /** Hears which partition was asked again, and its new attempt. */
  onRejoin?: (partition: number, attempt: number) => void;
}

/** Options of `requestAll`: those of every call, and whether a replaced attempt's successor is asked again. */
export interface RequestAllOptions extends CallOptions {
  /**
   * When a partition's attempt fails or is replaced before it answers, wait for its new attempt to
   * serve and ask that one (`true`: with the defaults of {@link RejoinOptions}). Without it, such a
   * partition's entry holds the error its attempt left. `timeoutMs` bounds each request, not the whole.
   */
  rejoin?: boolean | RejoinOptions;
}

/** The field names of {@link RequestAllOptions}. */
export const REQUEST_ALL_FIELDS = fieldsOf<RequestAllOptions>({ timeoutMs: true, signal: true, rejoin: true });
/** The field names of {@link RejoinOptions}. */
export const REJOIN_FIELDS = fieldsOf<RejoinOptions>({ timeoutMs: true, onRejoin: true });

/**
 * The options of a call that takes either a timeout (the older positional form) or {@link CallOptions}.
 * @param call The call, as an error names it (`ctx.request`).
 * @throws InvalidOptionError for a field that is not one of {@link CallOptions}.
 */
export function callOptions(opts: number | CallOptions | undefined, call: string): CallOptions {
  if (typeof opts === 'number') return { timeoutMs: opts };
  checkOptionsBag(opts, CALL_OPTION_FIELDS, call);
  return opts ?? {};
}

/** Rejects as soon as `signal` aborts, with its reason; `p` goes on, but its outcome is dropped. */
export function abandonable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Calls each of `partitions` partitions at once with `call` and gathers how each call went, by
 * partition: a call that throws is reported in its entry. An aborted `signal` rejects the whole
 * gathering (the calls go on, their outcomes dropped).
 */
export async function requestAll<T>(
  partitions: number,
  call: (partition: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<Map<number, PartitionReply<T>>> {
  signal?.throwIfAborted();
  const replies = Promise.all(
    Array.from({ length: partitions }, async (_, p): Promise<[number, PartitionReply<T>]> => {
      try {
        return [p, { ok: true, value: await call(p) }];
      } catch (err) {
        return [p, { ok: false, error: err as RequestError }];
      }
    }),
  );
  return new Map(await abandonable(replies, signal));
}

/** One partition's answer in {@link Cluster.requestAll}: its reply, or why it has none. */
export type PartitionReply<T = unknown> =
  | {
      /** The partition answered without error. */
      ok: true;
      /** What its handler returned. */
      value: T;
    }
  | {
      /** The request failed. */
      ok: false;
      /** Why: not serving, timed out, unknown endpoint, or its handler threw (the error's `code` says which). */
      error: RequestError;
    };
