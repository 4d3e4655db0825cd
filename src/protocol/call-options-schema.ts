/**
 * The options of one request or peer call, defined once as TypeBox schemas: their types and their
 * check (unknown fields with the nearest known name, then values, named by path) come from them.
 * Loaded on a call's first options object (call-options.ts), so a worker that passes none never
 * loads TypeBox.
 */
import { Type, type Static, type TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InvalidOptionError } from '../errors.js';
import { isObject } from '../option-fields.js';
import { checkOptions, FunctionOf, Guarded, STRICT } from '../option-schema.js';

const TimeoutMs = (): ReturnType<typeof Type.Number> => Type.Number({ exclusiveMinimum: 0, problem: 'must be a positive number of milliseconds' });

/** Options of one call: `timeoutMs` bounds it, and `signal` abandons it (it then rejects with the signal's reason). */
export const CallOptionsSchema = Type.Object(
  {
    /** Ms before the call rejects. Default: option `requestTimeoutMs` for requests, 30000 ms for `waitForPeers`. */
    timeoutMs: Type.Optional(TimeoutMs()),
    /** Abandons the call when it aborts; an already aborted signal rejects at once. */
    signal: Type.Optional(Guarded<AbortSignal>((v) => v instanceof AbortSignal, 'must be an AbortSignal')),
  },
  STRICT,
);

/**
 * How `requestAll`'s `rejoin` asks a partition again whose attempt failed or was replaced before it
 * answered (an endpoint that calls `ctx.elasticRun`: the new attempt joins the survivors' restore).
 */
export const RejoinOptionsSchema = Type.Object(
  {
    /** Ms to wait, each time, for the partition's new attempt to serve. Default: option `startTimeoutMs`. */
    timeoutMs: Type.Optional(TimeoutMs()),
    /** Hears which partition was asked again, and its new attempt. */
    onRejoin: Type.Optional(FunctionOf<(partition: number, attempt: number) => void>('must be a function (partition, attempt)')),
  },
  STRICT,
);

/** Options of `requestAll`: those of every call, and whether a replaced attempt's successor is asked again. */
export const RequestAllOptionsSchema = Type.Object(
  {
    ...CallOptionsSchema.properties,
    /**
     * When a partition's attempt fails or is replaced before it answers, wait for its new attempt to
     * serve and ask that one (`true`: with the defaults of {@link RejoinOptions}). Without it, such a
     * partition's entry holds the error its attempt left. `timeoutMs` bounds each request, not the whole.
     */
    rejoin: Type.Optional(Type.Union([Type.Boolean(), RejoinOptionsSchema], { problem: 'must be a boolean or { timeoutMs, onRejoin }' })),
  },
  STRICT,
);

/** Options of one call: `timeoutMs` bounds it, and `signal` abandons it (it then rejects with the signal's reason). */
export type CallOptions = Static<typeof CallOptionsSchema>;
/** How {@link RequestAllOptions}' `rejoin` asks a partition again whose attempt failed or was replaced before it answered. */
export type RejoinOptions = Static<typeof RejoinOptionsSchema>;
/** Options of `requestAll`: those of every call, and whether a replaced attempt's successor is asked again. */
export type RequestAllOptions = Static<typeof RequestAllOptionsSchema>;

/**
 * Checks the options bag of call `call` against `schema`: absent, or an object that fits it.
 * @throws InvalidOptionError naming the call and the unknown field (with the nearest known one) or the wrong value.
 */
export function checkCallOptions(schema: TObject, value: unknown, call: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw new InvalidOptionError(call, `its options must be an object, got ${value === null ? 'null' : typeof value}`);
  // The quick check passes the options almost every call gives; the full one is for naming what is wrong.
  if (!Value.Check(schema, value)) checkOptions(schema, value, call);
}
