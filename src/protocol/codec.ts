// msgpackr without its native string extractor (a native addon, costly to load): see `unpackAny`.
import { Packr } from 'msgpackr/pack';
import { MalformedMessageError } from '../errors.js';
import { CHECKS } from './checks.generated.js';
import type { MessageOf, MessageType } from './schema.js';
import { PROTOCOL_VERSION } from './version.js';
import { useCodec } from './wire-values.js';

export { PROTOCOL_VERSION };

/** Largest message a receiver decodes; anything larger is refused before it is parsed. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

// Records off: messages must decode to plain objects in any msgpack implementation (the Spark
// runner is Python), and structures would make one process's encoding depend on another's state.
// An int64 within ±2^53 decodes as a number (what the runner's ints are), beyond as a bigint, so
// no digit is lost (docs/protocol.md "Values").
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'number' }); // 'auto' is in msgpackr, not its types
useCodec(
  (v) => packr.pack(v),
  (d) => unpackAny(d),
);

/** From this size on, a message has enough strings for msgpackr's native extractor to pay off. */
const NATIVE_FROM_BYTES = 64 * 1024;
let nativeLoad: Promise<unknown> | undefined;

/**
 * The first message of {@link NATIVE_FROM_BYTES} or more loads msgpackr's full entry, which
 * switches the shared decoder to the native string extractor for the messages after it; a process
 * that only sees small messages never loads the addon. Decoded values are the same either way.
 */
function unpackAny(data: Uint8Array): unknown {
  if (nativeLoad === undefined && data.length >= NATIVE_FROM_BYTES) nativeLoad = import('msgpackr').catch(() => undefined);
  return packr.unpack(data);
}

/** Settles once msgpackr's native extractor has been tried, or `undefined` while no large message asked for it. */
export function nativeDecoderLoad(): Promise<unknown> | undefined {
  return nativeLoad;
}

/** Every message on the bus is `{ v, t, ...fields }`. */
export interface Envelope {
  v: number;
  t: string;
  [field: string]: unknown;
}

/** Names the first thing wrong with a message that failed its check: an unexpected, missing or invalid field. */
function explain(t: MessageType, fields: Record<string, unknown>): string {
  const c = CHECKS[t];
  if (c.closed) for (const k of Object.keys(fields)) if (!(k in c.fields)) return `field "${k}": Unexpected property`;
  for (const k of c.required) if (fields[k] === undefined) return `field "${k}": Required property`;
  for (const [k, check] of Object.entries(c.fields)) if (fields[k] !== undefined && !check(fields[k])) return `field "${k}": does not match the protocol`;
  return 'message: does not match the protocol';
}

/** A decoded message of one of the types `T`: its type `t` with that type's fields (a discriminated union). */
export type Decoded<T extends MessageType> = { [K in T]: { t: K } & MessageOf<K> }[T];

/** Encodes a message of type `t` with its fields. */
export function encode<T extends MessageType>(t: T, fields: MessageOf<T>): Uint8Array {
  return packr.pack({ v: PROTOCOL_VERSION, t, ...(fields as object) });
}

/** Encodes any value with the bus's msgpack settings (no envelope). */
export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes a value packed with {@link pack}. */
export function unpack(data: Uint8Array): unknown {
  return unpackAny(data);
}

/**
 * Decodes a message, checks its version and that its type is one of `expected`, and validates its
 * fields against the protocol schema of that type.
 * @throws MalformedMessageError naming the subject and what was wrong (the field, for a bad field).
 */
export function decode<T extends MessageType>(subject: string, data: Uint8Array, expected: readonly T[]): Decoded<T> {
  if (data.length > MAX_MESSAGE_BYTES) throw new MalformedMessageError(subject, `${data.length} bytes, more than the ${MAX_MESSAGE_BYTES} a message may have`);
  let value: unknown;
  try {
    value = unpackAny(data);
  } catch (err) {
    throw new MalformedMessageError(subject, `not msgpack (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedMessageError(subject, 'not an envelope object');
  }
  const { v, t, ...fields } = value as Envelope;
  if (v !== PROTOCOL_VERSION) {
    throw new MalformedMessageError(subject, `protocol version ${String(v)}, expected ${PROTOCOL_VERSION}`);
  }
  if (typeof t !== 'string') throw new MalformedMessageError(subject, 'missing message type "t"');
  if (!(expected as readonly string[]).includes(t)) {
    throw new MalformedMessageError(subject, `unexpected message type "${t}", expected ${expected.join(' or ')}`);
  }
  // Checks compiled from the schema at build time (checks.generated.ts): no schema compiler loads at run time.
  if (!CHECKS[t as T].check(fields)) throw new MalformedMessageError(subject, `"${t}" ${explain(t as T, fields)}`);
  return { t, ...fields } as Decoded<T>;
}
