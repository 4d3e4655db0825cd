import type { Member } from './types.js';

/**
 * The membership on the wire: the driver publishes only what changed (`members-delta`, O(1) per
 * change instead of the whole view), and each partition keeps its view from the whole view it got
 * when it registered plus the deltas after it, asking for the whole view again when it sees a gap.
 */

/** The driver's side: turns membership views into deltas against what it published last. */
export class DeltaPublisher {
  private readonly sent = new Map<number, string>();
  private epoch = 0;

  /** The members changed since the last delta, with the epochs it spans; undefined when nothing changed. */
  next(epoch: number, members: readonly Member[]): Omit<Delta, 'generation'> | undefined {
    const changed = members.filter((m) => this.sent.get(m.partition) !== JSON.stringify(m));
    if (changed.length === 0 || epoch <= this.epoch) return undefined;
    for (const m of changed) this.sent.set(m.partition, JSON.stringify(m));
    const from = this.epoch;
    this.epoch = epoch;
    return { from, epoch, members: changed };
  }
}

/** A delta as received: the members that changed in (from, epoch], and the generation at `epoch`. */
export interface Delta {
  from: number;
  epoch: number;
  generation: number;
  members: Member[];
}

/**
 * A partition's view of the membership. Deltas that arrive before the first whole view (they
 * overtake the registration's answer) or after a gap wait in order until they fit.
 */
export class MembershipView {
  /** Epoch of the view; -1 before the first whole view. */
  epoch = -1;
  /** The cluster's generation at that epoch (collectives run within one). */
  generation = 0;
  private readonly byPartition = new Map<number, Member>();
  private waiting: Delta[] = [];

  /** The members, by partition. */
  get members(): Member[] {
    return [...this.byPartition.values()].sort((a, b) => a.partition - b.partition);
  }

  /** Takes a whole view; returns true if it was newer than the one held. */
  replace(epoch: number, generation: number, members: readonly Member[]): boolean {
    if (epoch <= this.epoch) return false;
    this.epoch = epoch;
    this.generation = generation;
    this.byPartition.clear();
    for (const m of members) this.byPartition.set(m.partition, m);
    this.applyWaiting();
    return true;
  }

  /**
   * Takes a delta. Returns `applied` when the view changed, `old` when it held nothing new, and
   * `gap` when a change before it was missed: ask for the whole view (the delta waits meanwhile).
   */
  apply(d: Delta): 'applied' | 'old' | 'gap' {
    if (d.epoch <= this.epoch) return 'old';
    if (this.epoch < 0 || d.from > this.epoch) {
      this.waiting.push(d);
      return this.epoch < 0 ? 'old' : 'gap';
    }
    this.merge(d);
    this.applyWaiting();
    return 'applied';
  }

  /** True while deltas wait for a change that was missed. */
  get behind(): boolean {
    return this.epoch >= 0 && this.waiting.length > 0;
  }

  private merge(d: Delta): void {
    // Each member in a delta is its whole, latest record: newer than anything the view holds.
    for (const m of d.members) this.byPartition.set(m.partition, m);
    this.epoch = d.epoch;
    this.generation = d.generation;
  }

  private applyWaiting(): void {
    for (;;) {
      this.waiting = this.waiting.filter((d) => d.epoch > this.epoch);
      const fits = this.waiting.find((d) => d.from <= this.epoch);
      if (!fits) return;
      this.waiting.splice(this.waiting.indexOf(fits), 1);
      this.merge(fits);
    }
  }
}
