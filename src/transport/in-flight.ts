/**
 * Counts the requests a partition is still answering, by name, so that draining can wait for them
 * (the README promises in-flight requests finish) and, when it gives up, say which ones it left.
 */
export class InFlight {
  private readonly running = new Map<string, number>();
  private total = 0;
  private waiters: Array<() => void> = [];

  /** How many requests are running now. */
  get size(): number {
    return this.total;
  }

  /**
   * Counts one request as running under `name` until the returned function is called. Calling it
   * more than once counts once, so every exit path of a request may call it.
   */
  begin(name: string): () => void {
    this.total++;
    this.running.set(name, (this.running.get(name) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.total--;
      const left = this.running.get(name)! - 1;
      if (left > 0) this.running.set(name, left);
      else this.running.delete(name);
      if (this.total === 0) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      }
    };
  }

  /** Counts `work` as running under `name` until it settles; returns it unchanged. */
  track<T>(name: string, work: Promise<T>): Promise<T> {
    const end = this.begin(name);
    // Settling is all that matters here; the caller handles the outcome of `work` itself.
    work.then(end, end);
    return work;
  }

  /** What is running now, as `name` or `name ×n`, sorted. */
  names(): string[] {
    return [...this.running].sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => (n > 1 ? `${name} ×${n}` : name));
  }

  /**
   * Resolves once nothing is running, or after `timeoutMs`, with what was still running then
   * (empty when everything finished).
   */
  settled(timeoutMs: number): Promise<string[]> {
    if (this.total === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve([]);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(this.names());
      }, timeoutMs);
      this.waiters.push(done);
    });
  }
}
