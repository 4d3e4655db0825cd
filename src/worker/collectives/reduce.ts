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

/** The statement a reduction loop runs for element `i`. */
const STEP: Record<BuiltinOp, string> = {
  sum: 'a[i] = a[i] + b[i];',
  prod: 'a[i] = a[i] * b[i];',
  min: 'if (b[i] < a[i]) a[i] = b[i];',
  max: 'if (b[i] > a[i]) a[i] = b[i];',
};

type Loop = (a: NumericArray | number[], b: NumericArray | number[]) => void;
const loops = new Map<string, Loop>();

/**
 * The loop of `op` for arrays of one kind. Each (kind, op) gets a function of its own, built once
 * from the constant statements above: V8 keeps its type feedback per function, and one loop shared
 * by every kind turns megamorphic once a process has reduced two kinds (measured: 61 ns per
 * Float32Array element in a shared loop that had seen four kinds, 2.3 ns in a loop of its own). Closures of one literal
 * share their feedback, so nothing short of separate functions does it.
 */
function loopFor(kind: string, op: BuiltinOp): Loop {
  const key = `${kind}/${op}`;
  let loop = loops.get(key);
  if (!loop) {
    try {
      loop = new Function('a', 'b', `for (let i = 0, n = a.length; i < n; i++) ${STEP[op]}`) as Loop;
    } catch {
      // Code generation from strings is off (--disallow-code-generation-from-strings): the shared loop, slower but right.
      loop = (a, b) => sharedLoop(a as number[], b as number[], op);
    }
    loops.set(key, loop);
  }
  return loop;
}

function sharedLoop(a: number[], b: number[], op: BuiltinOp): void {
  for (let i = 0; i < a.length; i++) a[i] = scalar(op, a[i]!, b[i]!) as number;
}

/**
 * Reduces `x` into `acc` element by element, in place (`acc[i] = acc[i] op x[i]`). Both are the
 * same kind and length. A tight loop per kind and operation, so a million floats cost a few milliseconds.
 */
export function reduceInto(acc: NumericArray | number[], x: NumericArray | number[], op: BuiltinOp): void {
  loopFor(arrayKind(acc) ?? 'Array', op)(acc, x);
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
