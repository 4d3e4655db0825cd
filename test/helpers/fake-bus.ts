import type { Clock } from '../../src/protocol/wait-for.js';
import type { CollectiveBus } from '../../src/worker/collectives/communicator.js';

/**
 * A clock that moves only when the test calls {@link FakeClock.advance}: timers due by then fire
 * in order of their due time (then of creation), so a timeout is reached without waiting for one.
 */
export class FakeClock implements Clock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { due: this.time + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Timers not fired or cleared yet. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time on by `ms`, firing every timer due by then; settles the promises they touch between timers. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.due <= end).sort(([a, x], [b, y]) => x.due - y.due || a - b)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].due;
      due[1].fn();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

/** Lets every promise and message already queued run (macrotask boundary; no timer of the clock involved). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type Callback = Parameters<CollectiveBus['subscribe']>[1]['callback'];

/** Whether NATS subject `subject` matches `pattern` (`*` one token, `>` the rest). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * An in-memory stand-in for the bus between communicators of one process: what is published
 * reaches every matching subscription on a later microtask, in order, as nats-server delivers it;
 * a request gets the first reply published to its inbox. Records every message (subject, bytes),
 * and lets a test drop messages (`filter`) or inject its own.
 */
export class FakeBus {
  private readonly subs: { pattern: string; callback: Callback; open: boolean }[] = [];
  private inbox = 0;
  /** Every message published, in order. */
  readonly published: { subject: string; data: Uint8Array }[] = [];
  /** Messages for which this returns false are not delivered. */
  filter: (subject: string, data: Uint8Array) => boolean = () => true;

  constructor(readonly maxPayload = 1024 * 1024) {}

  /** A connection to this bus, as one partition holds it. */
  connection(): CollectiveBus {
    return {
      info: { max_payload: this.maxPayload },
      publish: (subject, data) => this.publish(subject, data),
      subscribe: (pattern, { callback }) => {
        const sub = { pattern, callback, open: true };
        this.subs.push(sub);
        return { unsubscribe: () => void (sub.open = false) };
      },
      request: (subject, data) =>
        new Promise((resolve) => {
          const reply = `_INBOX.${++this.inbox}`;
          const sub = {
            pattern: reply,
            open: true,
            callback: ((_err, msg) => {
              sub.open = false;
              resolve(msg);
            }) as Callback,
          };
          this.subs.push(sub);
          this.publish(subject, data, reply);
        }),
    };
  }

  /** Publishes as a peer would (or a stranger). */
  publish(subject: string, data: Uint8Array, reply?: string): void {
    this.published.push({ subject, data });
    if (!this.filter(subject, data)) return;
    const targets = this.subs.filter((s) => s.open && matches(s.pattern, subject));
    queueMicrotask(() => {
      for (const s of targets) if (s.open) s.callback(null, reply === undefined ? { subject, data } : { subject, data, reply });
    });
  }
}
