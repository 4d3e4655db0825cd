import { DataType, RecordBatchReader, type Field, type RecordBatch, type Schema, type Vector } from 'apache-arrow';
import { SparkPartitionServerError } from '../errors.js';

/** How 64-bit integer columns become JavaScript values in row objects. */
export type LongMode = 'number' | 'bigint';

/** Turns one value of a column (as Arrow's `Vector.get` returns it) into a plain value. */
type Plain = (value: unknown) => unknown;
/** Reads row `i` of a column as a plain value. */
type Column = (i: number) => unknown;

const TWO_32 = 4294967296;

/** Digits of a 128-bit two's complement decimal (four little-endian 32-bit words) with `scale` decimals. */
function decimalText(words: Uint32Array, scale: number): string {
  let n = 0n;
  for (let w = words.length - 1; w >= 0; w--) n = (n << 32n) | BigInt(words[w]!);
  const bits = BigInt(words.length * 32);
  if (words[words.length - 1]! & 0x80000000) n -= 1n << bits;
  const negative = n < 0n;
  let digits = (negative ? -n : n).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  } else if (scale < 0) {
    digits += '0'.repeat(-scale);
  }
  return negative ? `-${digits}` : digits;
}

function tooLarge(column: string, value: bigint): SparkPartitionServerError {
  return new SparkPartitionServerError(
    'SPS_ROWS_LONG_OVERFLOW',
    `column "${column}": ${value} is beyond Number.MAX_SAFE_INTEGER and cannot be a number without losing digits; use the option longs: 'bigint'`,
  );
}

/** A converter of nested values of `type` (list items, struct fields, map entries). */
function plainOf(type: DataType, name: string, longs: LongMode): Plain {
  if (DataType.isInt(type) && type.bitWidth === 64) {
    if (longs === 'bigint') return (v) => v;
    return (v) => {
      if (v === null || v === undefined) return null;
      const n = Number(v as bigint);
      if (!Number.isSafeInteger(n)) throw tooLarge(name, v as bigint);
      return n;
    };
  }
  if (DataType.isTimestamp(type) || DataType.isDate(type)) return (v) => (v === null || v === undefined ? null : new Date(v as number));
  if (DataType.isDecimal(type)) {
    const scale = type.scale;
    return (v) => (v === null || v === undefined ? null : decimalText(v as Uint32Array, scale));
  }
  if (DataType.isList(type) || DataType.isFixedSizeList(type)) {
    const item = plainOf(type.children[0]!.type, name, longs);
    return (v) => {
      if (v === null || v === undefined) return null;
      const vec = v as Vector;
      const out = new Array<unknown>(vec.length);
      for (let j = 0; j < vec.length; j++) out[j] = item(vec.get(j));
      return out;
    };
  }
  if (DataType.isStruct(type)) {
    const fields = type.children.map((f) => [f.name, plainOf(f.type, `${name}.${f.name}`, longs)] as const);
    return (v) => {
      if (v === null || v === undefined) return null;
      const row = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [k, plain] of fields) out[k] = plain(row[k]);
      return out;
    };
  }
  if (DataType.isMap(type)) {
    const entry = type.children[0]!.type;
    const value = plainOf(entry.children[1]!.type, `${name}.value`, longs);
    return (v) => {
      if (v === null || v === undefined) return null;
      const out: Record<string, unknown> = {};
      for (const [k, x] of v as Iterable<[unknown, unknown]>) out[String(k)] = value(x);
      return out;
    };
  }
  if (DataType.isDictionary(type)) return plainOf(type.dictionary, name, longs);
  return (v) => (v === undefined ? null : v);
}

/** Reads a whole column; numbers straight from the typed array, the rest through `Vector.get`. */
function columnOf(field: Field, vector: Vector, longs: LongMode): Column {
  const type = field.type as DataType;
  const plainNulls = vector.nullCount === 0;
  const data = vector.data.length === 1 ? vector.data[0]! : undefined;
  if (data && (DataType.isFloat(type) || (DataType.isInt(type) && type.bitWidth <= 32))) {
    const values = (data.values as ArrayLike<number>).length === undefined ? undefined : (data.values as ArrayLike<number>);
    if (values) {
      // `values` starts at the data's first value already (a slice's offset only applies to its validity bitmap).
      if (plainNulls) return (i) => values[i];
      return (i) => (vector.isValid(i) ? values[i] : null);
    }
  }
  if (data && DataType.isInt(type) && type.bitWidth === 64 && longs === 'number') {
    // Two 32-bit halves: no BigInt per value. A high half outside ±2^21 is beyond 2^53.
    const words = new Int32Array(data.values.buffer, data.values.byteOffset, data.length * 2);
    const signed = type.isSigned;
    return (i) => {
      if (!plainNulls && !vector.isValid(i)) return null;
      const hi = words[2 * i + 1]!;
      const lo = words[2 * i]! >>> 0;
      if (signed ? hi >= 0x200000 || hi < -0x200000 : hi >>> 0 >= 0x200000) throw tooLarge(field.name, vector.get(i) as bigint);
      return (signed ? hi : hi >>> 0) * TWO_32 + lo;
    };
  }
  const plain = plainOf(type, field.name, longs);
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type) || DataType.isBool(type) || DataType.isBinary(type)) {
    return plainNulls ? (i) => vector.get(i) : (i) => (vector.isValid(i) ? vector.get(i) : null);
  }
  return (i) => (vector.isValid(i) ? plain(vector.get(i)) : null);
}

/**
 * Turns Arrow record batches into plain row objects keyed by column, one batch at a time (see the
 * type table in the README). A column of a type this does not know is passed on as Arrow gives it.
 */
export class RowObjects {
  constructor(private readonly longs: LongMode) {}

  /** The rows of one batch as plain objects. */
  objects(batch: RecordBatch): Record<string, unknown>[] {
    const n = batch.numRows;
    const fields = (batch.schema as Schema).fields;
    const rows = new Array<Record<string, unknown>>(n);
    for (let i = 0; i < n; i++) rows[i] = {};
    // Column by column: each column's reader is chosen once, and every object gets its keys in
    // the same order, so they all share one shape.
    fields.forEach((field, c) => {
      const read = columnOf(field, batch.getChildAt(c)!, this.longs);
      const key = field.name;
      for (let i = 0; i < n; i++) rows[i]![key] = read(i);
    });
    return rows;
  }
}

/** The rows of an Arrow IPC stream held in memory (a result frame) as plain objects. */
export function streamObjects(bytes: Uint8Array, longs: LongMode): Record<string, unknown>[] {
  const toObjects = new RowObjects(longs);
  const out: Record<string, unknown>[] = [];
  for (const batch of RecordBatchReader.from(bytes)) for (const row of toObjects.objects(batch)) out.push(row);
  return out;
}
