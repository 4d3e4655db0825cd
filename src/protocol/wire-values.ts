import { addExtension } from 'msgpackr/pack';
import { SparkPartitionServerError } from '../errors.js';

/**
 * The one mapping of a user's value (an endpoint's reply, a result record, a row) to what travels,
 * for every path: the msgpack of the bus and the result channel, and JSON (JSON-mode requests, the
 * Spark runner's result frames). docs/protocol.md "Values" is its table. A value is walked once
 * before it is encoded, so what the encoders would each do their own way (msgpackr: a Float32Array
 * as bare bytes, a Map as an object, undefined as ext 0; JSON: a Map as
 * `{}`, a throw on a bigint) never reaches them, and what cannot travel fails naming where it is.
 */

/** Typed arrays by their msgpackr code (the byte after ext type 0x74): msgpackr decodes them natively. */
export const ARRAY_KINDS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

/** msgpack extension types of the mapping: msgpackr's typed array, and ours for Set and Map. */
export const EXT = { typedArray: 0x74, set: 83, map: 77 } as const;

const KIND_CODES = new Map<unknown, number>(Object.values(ARRAY_KINDS).map((K, i) => [K, i]));

/** Integers a double holds exactly; JSON carries a bigint beyond them as its decimal string. */
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A value that cannot travel: `path` says where inside it (`reply.items[2].fn`), the message what it is. */
export class EncodeError extends SparkPartitionServerError {
  constructor(
    readonly path: string,
    why: string,
  ) {
    super('SPS_ENCODE', `${path}: ${why}`);
  }
}

/** An extension value as the walk leaves it for msgpackr: `data` is written as ext `type`. */
class Ext {
  constructor(
    readonly type: number,
    readonly data: readonly Uint8Array[],
  ) {}
}

const notLoaded = (): never => {
  throw new Error('wire-values: codec.ts not loaded');
};
let packNested: (value: unknown) => Uint8Array = notLoaded;
let unpackNested: (data: Uint8Array) => unknown = notLoaded;

/** Called once by codec.ts: the encoder and decoder Set and Map contents travel in. */
export function useCodec(pack: (value: unknown) => Uint8Array, unpack: (data: Uint8Array) => unknown): void {
  packNested = pack;
  unpackNested = unpack;
}

// Ext is private, so this packer touches only the walk's values; Set and Map contents travel with
// the bus's own settings (given by codec.ts, which owns them). The typing knows only `pack`
// returning bytes; msgpackr also passes an allocator to write into.
addExtension({
  Class: Ext,
  type: EXT.set, // msgpackr requires one; each value writes its own type below
  pack(ext: Ext, allocate: (n: number) => { target: Uint8Array; position: number }) {
    const length = ext.data.reduce((n, d) => n + d.byteLength, 0);
    // ext 32 always: a valid msgpack ext of any size, 6 header bytes.
    const { target, position } = allocate(6 + length);
    target[position] = 0xc9;
    new DataView(target.buffer, target.byteOffset).setUint32(position + 1, length);
    target[position + 5] = ext.type;
    let at = position + 6;
    for (const d of ext.data) {
      target.set(d, at);
      at += d.byteLength;
    }
  },
} as unknown as Parameters<typeof addExtension>[0]);
addExtension({ type: EXT.set, unpack: (data: Uint8Array) => new Set(unpackNested(data) as unknown[]) });
addExtension({ type: EXT.map, unpack: (data: Uint8Array) => new Map(unpackNested(data) as [unknown, unknown][]) });

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Appends a property to a path: `.name` for an identifier, `["odd key"]` otherwise. */
function member(path: string, k: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
}

/**
 * Maps `value` for `mode` (docs/protocol.md "Values"): for msgpack, typed arrays, Sets and Maps
 * become extensions and bytes a Buffer (msgpack bin); for JSON, plain JSON data, where an
 * undefined field is left out and undefined elsewhere is null.
 * @param root How the value is named in an error (`reply`, `result[12]`).
 * @throws EncodeError naming the path to a function, a symbol, a RegExp, an invalid Date, a bigint
 *   beyond 64 bits, a Map key JSON has no form for, or a cycle.
 */
export function toWireValue(value: unknown, root: string, mode: 'msgpack' | 'json'): unknown {
  const json = mode === 'json';
  const open = new Set<object>();
  const bigint = (b: bigint, path: string): bigint | number | string => {
    if (BigInt.asIntN(64, b) !== b && BigInt.asUintN(64, b) !== b) fail(path, `${b} does not fit in 64 bits`);
    if (!json) return b;
    return b >= -SAFE && b <= SAFE ? Number(b) : b.toString();
  };
  const walk = (v: unknown, path: string): unknown => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
      case 'number':
        return v;
      case 'bigint':
        return bigint(v, path);
      case 'undefined':
        // msgpackr's ext 0 keeps it for Node (an option bag's `{ signal: undefined }` stays a key).
        return json ? null : undefined;
      case 'function':
      case 'symbol':
        return fail(path, `a ${typeof v} cannot be sent`);
    }
    if (v === null) return null;
    const o = v as object;
    if (o instanceof Date) {
      if (Number.isNaN(o.getTime())) fail(path, 'an invalid Date cannot be sent');
      return json ? o.toISOString() : o;
    }
    if (ArrayBuffer.isView(o)) {
      if (o instanceof DataView || o instanceof Uint8Array) {
        // Bytes (a Buffer too): msgpack bin, bytes in Python; JSON has no bytes.
        return json ? Array.from(bytesOf(o)) : Buffer.from(o.buffer, o.byteOffset, o.byteLength);
      }
      const code = KIND_CODES.get(o.constructor);
      if (code === undefined) return fail(path, `a ${o.constructor.name} cannot be sent`);
      if (json) return Array.from(o as unknown as ArrayLike<number | bigint>, (x, i) => (typeof x === 'bigint' ? bigint(x, `${path}[${i}]`) : x));
      return new Ext(EXT.typedArray, [Uint8Array.of(code), bytesOf(o)]);
    }
    if (o instanceof ArrayBuffer) return walk(new Uint8Array(o), path);
    if (o instanceof RegExp) return fail(path, 'a RegExp cannot be sent (send its source)');
    if (open.has(o)) return fail(path, 'a cycle cannot be sent (the object holds itself)');
    open.add(o);
    try {
      if (Array.isArray(o)) return o.map((x, i) => walk(x, `${path}[${i}]`));
      if (o instanceof Set) {
        const items = Array.from(o, (x, i) => walk(x, `${path}[${i}]`));
        return json ? items : new Ext(EXT.set, [packNested(items)]);
      }
      if (o instanceof Map) {
        let i = 0;
        const entries = Array.from(o, ([k, x]): [unknown, unknown] => {
          const at = `${path}[${i++}]`;
          return [walk(k, `${at}[0]`), walk(x, `${at}[1]`)];
        });
        if (!json) return new Ext(EXT.map, [packNested(entries)]);
        const out: Record<string, unknown> = {};
        for (const [k, x] of entries) {
          if (typeof k === 'object' && k !== null) fail(path, 'a Map with a key that is not a string, number or boolean has no JSON form');
          out[String(k)] = x;
        }
        return out;
      }
      if (o instanceof Error) return { name: o.name, message: o.message };
      // A class with toJSON (a decimal type, a URL) travels as what it says, as JSON.stringify does.
      const toJSON = (o as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return walk(toJSON.call(o), path);
      // Any other object, a class instance too, travels as its own enumerable fields (its methods stay behind).
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) if (!json || x !== undefined) out[k] = walk(x, member(path, k));
      return out;
    } finally {
      open.delete(o);
    }
  };
  return walk(value, root);
}

function fail(path: string, why: string): never {
  throw new EncodeError(path, why);
}
