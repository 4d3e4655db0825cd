import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Per-partition, per-attempt, per-purpose secrets, all derived from one run key that only the
 * driver holds. A launcher hands each attempt it starts exactly two values: the token its
 * `POST /control/shutdown` accepts, and the proof its registration carries. Neither opens another
 * partition, another attempt, or the dashboard (whose token is the driver's own, derived from
 * nothing). The derivation (HMAC-SHA256, hex) is mirrored by the Spark runner, whose task for a partition
 * gets that partition's key (and no other) and derives the attempt's two values when Spark
 * starts the attempt.
 */

/** What one partition attempt holds besides its bus credentials. */
export interface AttemptSecrets {
  /** Accepted by this attempt's `POST /control/shutdown` only. */
  controlToken: string;
  /** Proves to the driver that a launcher started this attempt; sent once, in its registration. */
  proof: string;
}

function hmacHex(key: Buffer, message: string): string {
  return createHmac('sha256', key).update(message).digest('hex');
}

/** The two secrets of `attempt`, derived from its partition's key (hex), as the Spark runner does too. */
export function attemptSecrets(partitionKey: string, attempt: number): AttemptSecrets {
  const key = Buffer.from(partitionKey, 'hex');
  return { controlToken: hmacHex(key, `control:${attempt}`), proof: hmacHex(key, `register:${attempt}`) };
}

/** Compares two secrets in constant time (for secrets of one length; any other length is a mismatch). */
export function secretMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The run's key: made when a run starts, kept by the driver, never sent to a worker. */
export class RunKey {
  readonly #key: Buffer = randomBytes(32);

  /** The key of one partition, for launchers (Spark) that derive an attempt's secrets where it starts. */
  partitionKey(partition: number): string {
    return hmacHex(this.#key, `partition:${partition}`);
  }

  /** The secrets of one attempt of one partition. */
  attempt(partition: number, attempt: number): AttemptSecrets {
    return attemptSecrets(this.partitionKey(partition), attempt);
  }

  /** True when `proof` is the registration proof of that attempt. */
  verifies(partition: number, attempt: number, proof: string): boolean {
    return secretMatches(this.attempt(partition, attempt).proof, proof);
  }
}
