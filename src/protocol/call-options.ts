import type { RequestError } from '../errors.js';
import type { CallOptions, RequestAllOptions } from './call-options-schema.js';

export type { CallOptions, RejoinOptions, RequestAllOptions } from './call-options-schema.js';

/** The schemas and their check, loaded with the first options object a call is given. */
let schemas: typeof import('./call-options-schema.js') | undefined;
async function loadSchemas(): Promise<typeof import('./call-options-schema.js')> {
  return (schemas ??= await import('./call-options-schema.js'));
}

/**
 * The options of a call that takes either a timeout (the older positional form) or {@link CallOptions}.
 * @param call The call, as an error names it (`ctx.request`).
 * @throws InvalidOptionError for a field that is not one of {@link CallOptions}, or a wrong value.
 */
export async function callOptions(opts: number | CallOptions | undefined, call: string): Promise<CallOptions> {
  if (typeof opts === 'number') return { timeoutMs: opts };
  if (opts === undefined) return {};
  const s = await loadSchemas();
  s.checkCallOptions(s.CallOptionsSchema, opts, call);
  return opts;
}

/**
 * Checks the options of a `requestAll` (its `rejoin` too).
 * @throws InvalidOptionError for a field that is not one of {@link RequestAllOptions}, or a wrong value.
 */
export async function requestAllOptions(opts: RequestAllOptions | undefined, call: string): Promise<RequestAllOptions> {
  if (opts === undefined) return {};
  const s = await loadSchemas();
  s.checkCallOptions(s.RequestAllOptionsSchema, opts, call);
  return opts;
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
