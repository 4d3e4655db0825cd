import { initialTransition, transition, type AnyStateMachine, type EventFromLogic, type InputFrom, type SnapshotFrom } from 'xstate';

/** An action a transition asked for, as xstate hands it out (never executed here). */
export interface Effect {
  type: string;
  params: Record<string, unknown>;
}

/**
 * Drives a machine through xstate's pure `initialTransition()`/`transition()`: no actor, no timer,
 * no promise. The actions a transition returns are recorded instead of run; invoked actors are
 * finished by the test (`done`, `error`); delayed events wait on a simulated clock that moves only
 * when the test calls `advance`.
 */
export class PureRun<M extends AnyStateMachine> {
  snapshot: SnapshotFrom<M>;
  /** Simulated milliseconds since the start. */
  now = 0;
  /** Every action other than the machine's own bookkeeping (invokes, delays), in order. */
  readonly effects: Effect[] = [];
  /** Every actor the machine invoked, with its input, in order. */
  readonly invoked: { src: string; input: unknown }[] = [];
  private readonly timers = new Map<string, { due: number; event: EventFromLogic<M> }>();
  /** Invoked actors running now: source name → actor id. */
  private readonly children = new Map<string, string>();

  constructor(
    readonly machine: M,
    input: InputFrom<M>,
  ) {
    const [snapshot, actions] = (initialTransition as (m: M, i: InputFrom<M>) => [SnapshotFrom<M>, unknown[]])(machine, input);
    this.snapshot = snapshot;
    this.record(actions);
  }

  /** The state value now. */
  get value(): unknown {
    return (this.snapshot as { value: unknown }).value;
  }

  /** Sends an event; returns this run for chaining. */
  send(event: EventFromLogic<M>): this {
    const [snapshot, actions] = transition(this.machine, this.snapshot, event);
    this.snapshot = snapshot as SnapshotFrom<M>;
    this.record(actions as unknown[]);
    return this;
  }

  /** Finishes the running invoked actor of `src` with `output`. */
  done(src: string, output?: unknown): this {
    return this.send({ type: `xstate.done.actor.${this.child(src)}`, output } as EventFromLogic<M>);
  }

  /** Fails the running invoked actor of `src` with `error`. */
  error(src: string, error: unknown): this {
    return this.send({ type: `xstate.error.actor.${this.child(src)}`, error } as EventFromLogic<M>);
  }

  /** Invoked actors running now, by source name. */
  running(): string[] {
    return [...this.children.keys()];
  }

  /** Lets `ms` of simulated time pass, delivering each delayed event when it falls due. */
  advance(ms: number): this {
    const until = this.now + ms;
    for (;;) {
      const next = [...this.timers.entries()].filter(([, t]) => t.due <= until).sort((a, b) => a[1].due - b[1].due)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].due;
      this.send(next[1].event);
    }
    this.now = until;
    return this;
  }

  /** Delayed events waiting, as their delay left from now. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.due - this.now);
  }

  /** The params of every recorded effect of this type. */
  effectsOf(type: string): Record<string, unknown>[] {
    return this.effects.filter((e) => e.type === type).map((e) => e.params);
  }

  private child(src: string): string {
    const id = this.children.get(src);
    if (id === undefined) throw new Error(`no invoked actor "${src}" is running (running: ${this.running().join(', ') || 'none'})`);
    return id;
  }

  private record(actions: unknown[]): void {
    for (const action of actions as Effect[]) {
      const p = action.params ?? {};
      if (action.type === 'xstate.raise' && typeof p.delay === 'number') {
        this.timers.set(String(p.id), { due: this.now + p.delay, event: p.event as EventFromLogic<M> });
      } else if (action.type === 'xstate.cancel') {
        this.timers.delete(String(p.sendId));
      } else if (action.type === 'xstate.spawnChild') {
        this.children.set(String(p.src), String(p.id));
        this.invoked.push({ src: String(p.src), input: p.input });
      } else if (action.type === 'xstate.stopChild') {
        const id = (p.actorRef as { id?: string } | undefined)?.id ?? String(p.id);
        for (const [src, childId] of this.children) if (childId === id) this.children.delete(src);
      } else {
        this.effects.push({ type: action.type, params: p });
      }
    }
  }
}
