/**
 * Option objects defined once, as TypeBox schemas: the TypeScript type (`Static`), the check and
 * the defaults all come from the schema. A check throws {@link InvalidOptionError} naming the
 * option by its path: an unknown field with the nearest known one, else the first value that does
 * not fit, in the words of its schema's `problem`.
 */
import {
  Kind,
  KindGuard,
  Type,
  TypeRegistry,
  type Static,
  type TObject,
  type TOptional,
  type TProperties,
  type TSchema,
  type TUnsafe,
} from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { InvalidOptionError } from './errors.js';
import { isObject, rejectUnknownFields } from './option-fields.js';

/**
 * What a schema adds for its errors: `problem` is what follows the option's name (`must be …`),
 * and `secret` keeps the value given out of the message.
 */
export interface OptionAnnotations {
  /** What is wrong, or a function of the value given that says it (e.g. which methods it lacks). */
  problem?: string | ((value: unknown) => string);
  secret?: boolean;
}

TypeRegistry.Set<{ guard: (v: unknown) => boolean }>('Guard', (schema, value) => schema.guard(value));

/** A value TypeBox cannot describe (a function of a given shape, a class instance), checked by `guard`. */
export function Guarded<T>(guard: (v: unknown) => boolean, problem: string | ((value: unknown) => string)): TUnsafe<T> {
  return Type.Unsafe<T>({ [Kind]: 'Guard', guard, problem });
}

/** A function (its parameters are the type's, not checked at run time). */
export function FunctionOf<T>(problem: string): TUnsafe<T> {
  return Guarded<T>((v) => typeof v === 'function', problem);
}

/** `schema`, optional, with `value` as its default: {@link Resolved} has the field always set. */
export function WithDefault<T extends TSchema>(schema: T, value: Static<T>): TOptional<T & { default: Static<T> }> {
  return Type.Optional({ ...schema, default: value } as T & { default: Static<T> }) as TOptional<T & { default: Static<T> }>;
}

/** An integer option from 1 to `max`. */
export function PositiveInt(max = Number.MAX_SAFE_INTEGER): ReturnType<typeof Type.Integer> {
  return Type.Integer({ minimum: 1, maximum: max, problem: `must be an integer from 1 to ${max}` });
}

/** A non-empty string option. */
export function NonEmpty(annotations: OptionAnnotations = {}): ReturnType<typeof Type.String> {
  return Type.String({ minLength: 1, problem: 'must be a non-empty string', ...annotations });
}

/** A non-empty string, besides white space. */
export function Text(): ReturnType<typeof Type.String> {
  return Type.String({ pattern: '\\S', problem: 'must be a non-empty string' });
}

/** A safe integer (`nonZero`: other than 0). */
export function SafeInteger(nonZero = false): TUnsafe<number> {
  return Guarded<number>((v) => Number.isSafeInteger(v) && (!nonZero || v !== 0), `must be a safe integer${nonZero ? ' other than 0' : ''}`);
}

/** Names to string values (an environment, a Spark configuration), its errors in the words of `problem`. */
export function StringMap(problem: string) {
  return Type.Record(Type.String(), Type.String({ problem: 'must be a string' }), { problem });
}

/** Option objects refuse fields they do not have. */
export const STRICT = { additionalProperties: false } as const;

/** One of `values`, its errors listing them. */
export function OneOf<const V extends readonly string[]>(values: V): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      { problem: `must be ${values.map((v) => `"${v}"`).join(', ')}` },
    ),
  );
}

type DefaultedKeys<P extends TProperties> = { [K in keyof P]: P[K] extends { default: unknown } ? K : never }[keyof P];

/** The options of schema `T` once checked: the fields with a default are always set. */
export type Resolved<T extends TObject> = Omit<Static<T>, DefaultedKeys<T['properties']>> & {
  [K in DefaultedKeys<T['properties']> & keyof Static<T>]-?: Exclude<Static<T>[K], undefined>;
};

/** `value` (checked against `schema`) with every absent field that has a default set to it. */
export function withDefaults<T extends TObject>(schema: T, value: Static<T>): Resolved<T> {
  const out: Record<string, unknown> = { ...value };
  for (const [k, s] of Object.entries(schema.properties as TProperties)) if (out[k] === undefined && 'default' in s) out[k] = s.default as unknown;
  return out as Resolved<T>;
}

/** Rows, iterables and class instances are the user's own, not option objects whose fields we know. */
function isOptionObject(v: unknown): v is Record<string, unknown> {
  return isObject(v) && !(Symbol.iterator in v) && !(Symbol.asyncIterator in v);
}

/** The object schemas `schema` may be (itself, or the object members of a union). */
function objectSchemas(schema: TSchema): TObject[] {
  if (KindGuard.IsObject(schema)) return [schema];
  if (KindGuard.IsUnion(schema)) return schema.anyOf.flatMap(objectSchemas);
  return [];
}

/**
 * Refuses the first field of `value`, at any depth, that no object `schema` may be has.
 * @throws InvalidOptionError naming it by its path under `path`, with the nearest known name.
 */
export function rejectUnknownKeys(schema: TSchema, value: unknown, path: string): void {
  if (!isOptionObject(value)) return;
  const objects = objectSchemas(schema);
  if (objects.length === 0) return;
  rejectUnknownFields(value, [...new Set(objects.flatMap((o) => Object.keys(o.properties)))], path);
  for (const [k, v] of Object.entries(value)) {
    const field = objects.find((o) => k in o.properties)?.properties[k];
    if (field) rejectUnknownKeys(field, v, path ? `${path}.${k}` : k);
  }
}

/** Of a union's errors, those of the one object member `value` has the fields of, if just one. */
function memberError(error: ValueError): ValueError {
  const value: unknown = error.value;
  if (error.type !== ValueErrorType.Union || !isOptionObject(value)) return error;
  const keys = Object.keys(value);
  const fits = (error.schema as unknown as { anyOf: TSchema[] }).anyOf.map(
    (s) => KindGuard.IsObject(s) && keys.every((k) => k in s.properties) && (s.required ?? []).every((k) => keys.includes(k)),
  );
  if (fits.filter(Boolean).length !== 1) return error;
  const inner = error.errors[fits.indexOf(true)]?.First();
  return inner ? memberError(inner) : error;
}

/** The words of a failed check: its schema's `problem`, else TypeBox's, and the value unless secret. */
function problemOf(error: ValueError): string {
  const { problem, secret } = error.schema as OptionAnnotations;
  const said = typeof problem === 'function' ? problem(error.value) : (problem ?? `must fit: ${error.message}`);
  if (error.type === ValueErrorType.ObjectRequiredProperty || error.value === undefined) return `is required; it ${said}`;
  const v: unknown = error.value;
  const shown = !secret && (v === null || ['string', 'number', 'boolean'].includes(typeof v));
  return shown ? `${said}, got ${JSON.stringify(v)}` : said;
}

/**
 * The first value of `value` that does not fit `schema` (unknown fields aside): its path under
 * `path` (`options` at the top level) and what is wrong with it; `undefined` when every value fits.
 */
export function firstProblem(schema: TSchema, value: unknown, path = ''): { path: string; problem: string } | undefined {
  const first = Value.Errors(schema, value).First();
  if (first === undefined) return undefined;
  const error = memberError(first);
  const at = [
    path,
    ...error.path
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')),
  ]
    .filter((p) => p !== '')
    .join('.');
  return { path: at || 'options', problem: problemOf(error) };
}

/**
 * Checks `value` against `schema`, unknown fields first (with the nearest known name), then values.
 * @param path Where `value` is (`natsTls`), or `''` for the top level of an options object.
 * @throws InvalidOptionError naming the first field that is unknown or wrong by its path.
 */
export function checkOptions<T extends TSchema>(schema: T, value: unknown, path = ''): asserts value is Static<T> {
  if (path === '' && !isObject(value)) throw new InvalidOptionError('options', 'must be an object');
  rejectUnknownKeys(schema, value, path);
  const problem = firstProblem(schema, value, path);
  if (problem) throw new InvalidOptionError(problem.path, problem.problem);
}
