/**
 * Numbering of collective calls within a generation: every partition makes the same calls in the
 * same order, so call `s` of generation `g` is the same call everywhere. Tracks which calls are over
 * (their messages are stale), how far ahead a peer's messages are held, and who sent anything for
 * a call (to name who never arrived on a timeout). Pure bookkeeping, no effects.
 */

/** Calls ahead of this partition's next one for which peers' messages are held. */
export const SEQ_WINDOW = 1024;

/** Where a message of call `s` stands: for a call over, beyond the window, or one to file. */
export type SeqStanding = 'stale' | 'overflow' | 'open';

/** The call numbers of one partition in its current generation. */
export class CallSequence {
  private nextSeq = 0;
  /** Calls below this number, and those in `finished`, are over. */
  private floor = 0;
  private readonly finished = new Set<number>();
  /** Who sent anything for a call. */
  private readonly arrived = new Map<number, Set<number>>();

  constructor(private readonly window = SEQ_WINDOW) {}

  /** A new generation: numbering starts at 0 again. */
  reset(): void {
    this.nextSeq = 0;
    this.floor = 0;
    this.finished.clear();
    this.arrived.clear();
  }

  /** Takes the number of this partition's next call. */
  next(): number {
    return this.nextSeq++;
  }

  /** Where a message of call `s` stands. */
  standing(s: number): SeqStanding {
    if (s < this.floor || this.finished.has(s)) return 'stale';
    if (s >= this.nextSeq + this.window) return 'overflow';
    return 'open';
  }

  /** Notes that `from` sent something for call `s`. */
  arrive(s: number, from: number): void {
    let seen = this.arrived.get(s);
    if (!seen) this.arrived.set(s, (seen = new Set()));
    seen.add(from);
  }

  /** Of `expect`, the partitions that sent nothing for call `s`. */
  neverArrived(s: number, expect: readonly number[]): number[] {
    const seen = this.arrived.get(s);
    return expect.filter((p) => !seen?.has(p));
  }

  /** Call `s` is over: its later messages are stale. */
  end(s: number): void {
    this.arrived.delete(s);
    this.finished.add(s);
    while (this.finished.delete(this.floor)) this.floor++;
  }
}
