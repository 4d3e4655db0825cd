import { Packr } from 'msgpackr';
import { MalformedMessageError } from '../errors.js';

/**
 * Version of the wire envelope. A receiver rejects (and counts) messages of any other version, so
 * mixed deployments fail loudly instead of misreading each other.
 */
export const PROTOCOL_VERSION = 1;

// Records off: messages must decode to plain objects in any msgpack implementation (the Spark
// runner is Python), and structures would make one process's encoding depend on another's state.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Every message on the bus is `{ v, t, ...fields }`. */
export interface Envelope {
  v: number;
  t: string;
  [field: string]: unknown;
}

/** Encodes a message of type `t` with its fields. */
export function encode(t: string, fields: Record<string, unknown> = {}): Uint8Array {
  return packr.pack({ v: PROTOCOL_VERSION, t, ...fields });
}

/** Encodes any value with the bus's msgpack settings (no envelope). */
export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes a value packed with {@link pack}. */
export function unpack(data: Uint8Array): unknown {
  return packr.unpack(data);
}

/**
 * Decodes an envelope and checks its version and type.
 * @throws MalformedMessageError naming the subject and what was wrong.
 */
export function decode(subject: string, data: Uint8Array, expected?: readonly string[]): Envelope {
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (err) {
    throw new MalformedMessageError(subject, `not msgpack (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedMessageError(subject, 'not an envelope object');
  }
  const env = value as Envelope;
  if (env.v !== PROTOCOL_VERSION) {
    throw new MalformedMessageError(subject, `protocol version ${String(env.v)}, expected ${PROTOCOL_VERSION}`);
  }
  if (typeof env.t !== 'string') {
    throw new MalformedMessageError(subject, 'missing message type "t"');
  }
  if (expected && !expected.includes(env.t)) {
    throw new MalformedMessageError(subject, `unexpected message type "${env.t}", expected ${expected.join(' or ')}`);
  }
  return env;
}
