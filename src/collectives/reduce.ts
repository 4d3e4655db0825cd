import { arrayKind, type NumericArray } from './values.js';

/** The reductions every partition can apply element by element. */
export type BuiltinOp = 'sum' | 'min' | 'max' | 'prod';

/** A reduction: a built-in one, or a function combining two values into one (any msgpack values). */
export type ReduceOp<T = unknown> = BuiltinOp | ((a: T, b: T) => T);

/** What a built-in reduction takes: a number, a bigint, an array of numbers, or a typed array. */
export type Reducible = number | bigint | number[] | NumericArray;

const BUILTIN = new Set<string>(['sum', 'min', 'max', 'prod']);

/** True when `op` names a built-in reduction. */
export function isBuiltinOp(op: unknown): op is BuiltinOp {
  return typeof op === 'string' && BUILTIN.has(op);
}

type Scalar = number | bigint;

function scalar(op: BuiltinOp, a: Scalar, b: Scalar): Scalar {
  // Both sides are the same kind (checked by the caller); the casts only satisfy the type checker.
  const x = a as number;
  const y = b as number;
  switch (op) {
    case 'sum':
      return x + y;
    case 'prod':
      return x * y;
    case 'min':
      return y < x ? y : x;
    case 'max':
      return y > x ? y : x;
  }
}

/**
 * Reduces `x` into `acc` element by element, in place (`acc[i] = acc[i] op x[i]`). Both are the
 * same kind and length. One tight loop per operation, so a million floats cost about a millisecond.
 */
export function reduceInto(acc: NumericArray | number[], x: NumericArray | number[], op: BuiltinOp): void {
  const a = acc as number[];
  const b = x as number[];
  const n = a.length;
  switch (op) {
    case 'sum':
      for (let i = 0; i < n; i++) a[i] = a[i]! + b[i]!;
      return;
    case 'prod':
      for (let i = 0; i < n; i++) a[i] = a[i]! * b[i]!;
      return;
    case 'min':
      for (let i = 0; i < n; i++) if (b[i]! < a[i]!) a[i] = b[i]!;
      return;
    case 'max':
      for (let i = 0; i < n; i++) if (b[i]! > a[i]!) a[i] = b[i]!;
      return;
  }
}

/** What kind of reducible a value is, for matching partitions' values: `number`, `bigint`, `array`, or a typed-array kind. */
export function reducibleKind(value: unknown): string | undefined {
  if (typeof value === 'number') return 'number';
  if (typeof value === 'bigint') return 'bigint';
  if (Array.isArray(value)) return value.every((v) => typeof v === 'number') ? 'array' : undefined;
  return arrayKind(value);
}

/** Length of a reducible (1 for a scalar). */
export function lengthOf(value: Reducible): number {
  return typeof value === 'number' || typeof value === 'bigint' ? 1 : value.length;
}

/**
 * Combines the values of every partition, in partition order (`((v0 op v1) op v2) …`), so every
 * partition that computes it gets the same bits. Built-in ops need every value to be of the same
 * kind and length; `describe(i)` names value `i` in the error otherwise. Never mutates the inputs.
 */
export function reduceValues(values: unknown[], op: ReduceOp, describe: (i: number) => string): unknown {
  if (!isBuiltinOp(op)) return values.slice(1).reduce((acc, v) => op(acc, v), values[0]);
  const kind = reducibleKind(values[0]);
  if (!kind) throw new TypeError(`${describe(0)} is not a number, bigint, array of numbers or typed array`);
  const length = lengthOf(values[0] as Reducible);
  for (let i = 1; i < values.length; i++) {
    const k = reducibleKind(values[i]);
    if (k !== kind) throw new TypeError(`${describe(i)} is ${k ?? 'not reducible'}, ${describe(0)} is ${kind}`);
    const l = lengthOf(values[i] as Reducible);
    if (l !== length) throw new TypeError(`${describe(i)} has ${l} elements, ${describe(0)} has ${length}`);
  }
  if (kind === 'number' || kind === 'bigint') return (values as Scalar[]).slice(1).reduce((a, b) => scalar(op, a, b), values[0] as Scalar);
  const acc = (values[0] as NumericArray | number[]).slice();
  for (let i = 1; i < values.length; i++) reduceInto(acc, values[i] as NumericArray | number[], op);
  return acc;
}
