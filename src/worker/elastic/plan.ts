/**
 * The pure decisions of elastic state (docs/collectives.md#elastic-state): which commit a group
 * restores after a lost partition, who sends it and who needs it, and whether a commit was agreed.
 * No I/O here; `elastic-run.ts` carries them out over the collectives.
 */

/** What one partition holds of the elastic state when a restore begins. */
export interface CommitHolding {
  /** The last commit this partition saw complete (0: the initial state, which every partition holds). */
  committed: number;
  /** A commit this partition took a snapshot for but did not see complete, if any. */
  pending?: number;
}

/** What a restore does, the same on every partition (it is computed from every partition's holding). */
export interface RestorePlan {
  /** The commit every partition goes back to: the highest one any partition saw complete. */
  commit: number;
  /** The partition that sends it: the lowest that saw it complete. */
  source: number;
  /** Partitions that hold no snapshot of it (new attempts, mostly) and receive it from `source`. */
  receivers: number[];
}

/**
 * The restore of a group whose partitions hold `holdings` (in partition order). A commit some
 * partition saw complete was reached by every partition (its agreement needs all of them), so every
 * survivor holds it, committed or pending; only partitions that started afresh need it sent.
 */
export function restorePlan(holdings: readonly CommitHolding[]): RestorePlan {
  if (holdings.length === 0) throw new RangeError('a restore needs at least one partition');
  let commit = -1;
  let source = -1;
  holdings.forEach((h, p) => {
    if (h.committed > commit) {
      commit = h.committed;
      source = p;
    }
  });
  // Commit 0 is the initial state: every partition has its own copy.
  const receivers = commit === 0 ? [] : holdings.flatMap((h, p) => (h.committed === commit || h.pending === commit ? [] : [p]));
  return { commit, source, receivers };
}

/** Where this partition takes the restored state from. */
export type RestoreSource = 'committed' | 'pending' | 'receive' | 'send';

/** What partition `self` does in `plan`, given what it holds. */
export function restoreRole(plan: RestorePlan, self: number, holding: CommitHolding): RestoreSource {
  if (plan.receivers.includes(self)) return 'receive';
  if (self === plan.source && plan.receivers.length > 0) return 'send';
  return holding.committed === plan.commit ? 'committed' : 'pending';
}

/**
 * `undefined` when every partition committed the same number, else why not (partitions that call
 * `commit()` a different number of times have diverged).
 */
export function commitDisagreement(numbers: readonly number[]): string | undefined {
  const first = numbers[0];
  const odd = numbers.flatMap((k, p) => (k === first ? [] : [p]));
  if (odd.length === 0) return undefined;
  return `partitions committed different numbers (${numbers.map((k, p) => `${p}: ${k}`).join(', ')}): every partition must commit at the same points`;
}
