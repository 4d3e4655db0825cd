import { SparkPartitionServerError } from '../errors.js';

/**
 * The one key → partition function of the project, the same that nats-server's subject mapping
 * `{{partition(n, i)}}` computes for one wildcard token: FNV-1a (32 bit) over the token's bytes,
 * modulo the number of partitions. So a client that publishes on the key-routed subject, a client
 * in another language computing it itself, the embedded launcher and the Spark runner all place a
 * key on the same partition. See docs/protocol.md, "Keys", and its vectors (test/fixtures/key-vectors.json).
 */

/** A key: a string (its UTF-8 bytes), or an integer (a safe-integer number or a bigint; its decimal string). */
export type PartitionKey = string | number | bigint;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/** A key that is not a string or an integer (`SPS_BAD_KEY`). */
export class KeyError extends SparkPartitionServerError {
  constructor(problem: string) {
    super('SPS_BAD_KEY', `Bad key: ${problem}`);
  }
}

/**
 * The token a key is hashed as: a string as it is, an integer as its decimal string (`-` for a
 * negative one, no `+`, no leading zeros), whatever its type, so `7`, `7n` and Python's `7` agree.
 * A number that is not an integer (or beyond 2^53, where it is no longer exact) is refused.
 */
export function keyToken(key: unknown): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'bigint') return key.toString();
  if (typeof key === 'number') {
    if (!Number.isSafeInteger(key)) throw new KeyError(`${String(key)} is a number but not a safe integer (use a bigint or a string)`);
    // -0 is 0: its decimal string would otherwise differ between languages.
    return String(key === 0 ? 0 : key);
  }
  throw new KeyError(`a key must be a string, an integer or a bigint, got ${key === null ? 'null' : typeof key}`);
}

/** FNV-1a, 32 bit, of `bytes`. */
export function fnv1a32(bytes: Uint8Array): number {
  let h = FNV_OFFSET;
  for (const b of bytes) h = Math.imul(h ^ b, FNV_PRIME) >>> 0;
  return h;
}

/** The partition (of `partitions`) that owns `key`. */
export function partitionOfKey(key: unknown, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new KeyError(`partitions must be a positive integer, got ${String(partitions)}`);
  return fnv1a32(utf8.encode(keyToken(key))) % partitions;
}
