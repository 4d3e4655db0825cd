/** Options of one call: `timeoutMs` bounds it, and `signal` abandons it (it then rejects with the signal's reason). */
export interface CallOptions {
  /** Ms before the call rejects. Default: option `requestTimeoutMs` for requests, 30000 ms for `waitForPeers`. */
  timeoutMs?: number;
  /** Abandons the call when it aborts; an already aborted signal rejects at once. */
  signal?: AbortSignal;
}

/** The options of a call that takes either a timeout (the older positional form) or {@link CallOptions}. */
export function callOptions(opts: number | CallOptions | undefined): CallOptions {
  return typeof opts === 'number' ? { timeoutMs: opts } : (opts ?? {});
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
