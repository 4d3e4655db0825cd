import { pack, unpack, PROTOCOL_VERSION } from '../../src/protocol/codec.js';
import { MESSAGE_SCHEMAS } from '../../src/protocol/schema.js';

/** A seeded random source (mulberry32): the same seed gives the same messages, so a failure can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = Object.keys(MESSAGE_SCHEMAS);

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}

function randomBytes(rnd: () => number, max: number): Uint8Array {
  const out = new Uint8Array(Math.floor(rnd() * max));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  return out;
}

/** A random msgpack-able value, nested up to `depth`. */
export function randomValue(rnd: () => number, depth = 2): unknown {
  const kind = Math.floor(rnd() * (depth > 0 ? 11 : 8));
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rnd() < 0.5;
    case 2:
      return Math.floor(rnd() * 2 ** 32) - 2 ** 31;
    case 3:
      return (rnd() - 0.5) * 1e12;
    case 4:
      return pick(rnd, [-1, 0, 1, 2 ** 53, -(2 ** 63), Number.NaN, Infinity, 65536, PROTOCOL_VERSION]);
    case 5:
      return Buffer.from(randomBytes(rnd, 16)).toString('latin1');
    case 6:
      return pick(rnd, ['', 'serving', 'p0', '*', '>', 'sps.x.ctl.shutdown', 'x'.repeat(300), ...TYPES]);
    case 7:
      return randomBytes(rnd, 12);
    case 8:
      return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth - 1));
    case 9:
      return BigInt(Math.floor(rnd() * 2 ** 40)) * 2n ** 20n;
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(rnd() * 4) }, () => [pick(rnd, ['v', 't', 'attempt', 'epoch', 'members', 'body', 'x']), randomValue(rnd, depth - 1)]),
      );
  }
}

/** One message derived from `valid`: random bytes, a random value, or `valid` mutated at the byte or field level. */
export function mutate(rnd: () => number, valid: Uint8Array): Uint8Array {
  const how = Math.floor(rnd() * 9);
  switch (how) {
    case 0:
      return randomBytes(rnd, 64);
    case 1:
      return pack(randomValue(rnd, 3));
    case 2: {
      const out = Uint8Array.from(valid);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let i = 0; i < flips && out.length > 0; i++) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
      return out;
    }
    case 3:
      return valid.subarray(0, Math.floor(rnd() * valid.length));
    case 4: {
      const tail = randomBytes(rnd, 16);
      const out = new Uint8Array(valid.length + tail.length + 1);
      out.set(valid);
      out.set(tail, valid.length + 1);
      return out;
    }
    default: {
      // Field level: the envelope stays msgpack, but a field goes missing, appears, or changes type.
      const env = { ...(unpack(valid) as Record<string, unknown>) };
      const keys = Object.keys(env);
      const key = pick(rnd, keys);
      if (how === 5) delete env[key];
      else if (how === 6) env[pick(rnd, ['extra', 'partition', 'identity', 'pid', 'token'])] = randomValue(rnd);
      else if (how === 7) env[key] = randomValue(rnd);
      else env[pick(rnd, ['v', 't'])] = pick(rnd, [PROTOCOL_VERSION + 1, 1, '2', ...TYPES]);
      return pack(env);
    }
  }
}
