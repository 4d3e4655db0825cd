import leven from 'leven';
import { InvalidOptionError } from './errors.js';

// Unknown option names are refused, with the nearest known name: a misspelt option would otherwise
// be silently ignored and its default used.

/**
 * The field names of `T`, from an object that lists each of them: the compiler checks the list
 * against the type (a field missing or extra does not compile), so the type stays the one definition.
 */
export function fieldsOf<T>(all: { [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(all);
}

/** The field names of any member of a union `T`. */
export type UnionKeys<T> = T extends unknown ? keyof T : never;

/** The known name nearest to `name` (a typo, a different case, a missing or extra suffix), if one is near enough. */
function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    // A name that is the start of another (or the other's start), as `cluster` of `clusterId`, is one edit away.
    const prefix = Math.min(k.length, name.length) >= 4 && (k.startsWith(name) || name.startsWith(k));
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : prefix ? 1 : leven(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  // About one edit per four letters: near enough to be a typo, not so far as to name another option.
  return bestDistance <= Math.max(1, Math.floor(name.length / 4)) ? best : undefined;
}

/** The first field of `value` that is not one of `known`, and the known field nearest to it. */
export function unknownField(value: object, known: readonly string[]): { field: string; guess: string | undefined } | undefined {
  const field = Object.keys(value).find((k) => !known.includes(k));
  return field === undefined ? undefined : { field, guess: nearest(field, known) };
}

/**
 * Throws {@link InvalidOptionError} for the first field of `value` that is not one of `known`,
 * naming it by its path and the known field nearest to it.
 * @param path Where `value` is (`natsTls`, `source.range`), or `''` for the top level.
 */
export function rejectUnknownFields(value: object, known: readonly string[], path = ''): void {
  const unknown = unknownField(value, known);
  if (!unknown) return;
  const { field, guess } = unknown;
  const hint = guess !== undefined ? `did you mean "${path ? `${path}.` : ''}${guess}"?` : `known: ${known.join(', ')}`;
  throw new InvalidOptionError(path ? `${path}.${field}` : field, `is not an option${path ? ` of ${path}` : ''} (${hint})`);
}

/** A plain object (not null, not an array): the shape every nested option object has. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks the options bag of a public call: absent, or an object with none but `known` fields.
 * @param call The call, as the error names it (`cluster.request`, `ctx.allReduce`).
 * @throws InvalidOptionError naming the call and the unknown field, with the nearest known one.
 */
export function checkOptionsBag(value: unknown, known: readonly string[], call: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw new InvalidOptionError(call, `its options must be an object, got ${value === null ? 'null' : typeof value}`);
  rejectUnknownFields(value, known, call);
}
