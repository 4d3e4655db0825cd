import { pack, unpack } from '../../protocol/codec.js';
import { ARRAY_KINDS as TYPED_ARRAYS, toWireValue } from '../../protocol/wire-values.js';

/** Typed arrays a collective sends as raw bytes (little-endian, as every platform Node supports). */
export type NumericArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type NumericArrayClass = { new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): NumericArray; readonly BYTES_PER_ELEMENT: number };

/** The typed-array kinds by their wire name (`dt` of a `coll` message): the values mapping's list. */
export const ARRAY_KINDS: Record<string, NumericArrayClass> = TYPED_ARRAYS;

/** The wire name of a typed array's kind, or `undefined` when `value` is not one we send raw. */
export function arrayKind(value: unknown): string | undefined {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) return undefined;
  const name = value.constructor.name;
  // Buffer is a Uint8Array subclass: it goes as bytes too and comes back as a Uint8Array.
  return ARRAY_KINDS[name] ? name : value instanceof Uint8Array ? 'Uint8Array' : undefined;
}

/** A value as it travels: raw bytes, and the typed-array kind when it is one (else msgpack). */
export interface WireValue {
  bytes: Uint8Array;
  kind?: string;
}

/**
 * The bytes of a value: a typed array's own memory (no copy), a bigint as 8 bytes (msgpack would
 * turn it into a number on the other side), anything else by the values mapping (typed arrays
 * inside it stay typed arrays).
 */
export function toWire(value: unknown): WireValue {
  if (typeof value === 'bigint') {
    if (BigInt.asIntN(64, value) !== value) throw new RangeError(`${value} does not fit in 64 bits`);
    return { bytes: new Uint8Array(BigInt64Array.of(value).buffer), kind: 'bigint' };
  }
  const kind = arrayKind(value);
  if (kind) {
    const a = value as NumericArray;
    return { bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength), kind };
  }
  return { bytes: pack(toWireValue(value, 'value', 'msgpack')) };
}

/** A typed array of `kind` over `bytes`, copied only when the bytes are not aligned for it. */
export function arrayOf(kind: string, bytes: Uint8Array): NumericArray {
  const K = ARRAY_KINDS[kind];
  if (!K) throw new TypeError(`unknown typed-array kind "${kind}"`);
  if (bytes.byteLength % K.BYTES_PER_ELEMENT !== 0) throw new TypeError(`${bytes.byteLength} bytes are not a whole number of ${kind} elements`);
  // A copy, not `slice()`: on a Buffer (what msgpack decodes bytes to) slice is a view.
  const aligned = bytes.byteOffset % K.BYTES_PER_ELEMENT === 0 ? bytes : new Uint8Array(bytes);
  return new K(aligned.buffer, aligned.byteOffset, aligned.byteLength / K.BYTES_PER_ELEMENT);
}

/** The value the bytes of {@link toWire} stand for. */
export function fromWire(w: WireValue): unknown {
  if (w.kind === 'bigint') return arrayOf('BigInt64Array', w.bytes)[0];
  return w.kind ? arrayOf(w.kind, w.bytes) : unpack(w.bytes);
}

/**
 * A new typed array of the same kind as `like`, with `length` elements, for a result the caller
 * writes in full: not zero-filled, and outside the heap's pool (an allReduce of 1M float32 went
 * from about 35–40 to about 29–33 ms), so its contents are undefined until written.
 */
export function allocLike(like: NumericArray, length: number): NumericArray {
  const K = ARRAY_KINDS[arrayKind(like)!]!;
  return new K(Buffer.allocUnsafeSlow(length * K.BYTES_PER_ELEMENT).buffer, 0, length);
}
