/**
 * The options of one collective call, defined once as a TypeBox schema: their type and their check
 * come from it. Loaded with the first call given options (collective-options.ts), so a worker whose
 * collectives take none never loads TypeBox.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CallOptionsSchema } from '../../protocol/call-options-schema.js';
import { CollectiveError, InvalidOptionError } from '../../errors.js';
import { isObject } from '../../option-fields.js';
import { firstProblem, OneOf, rejectUnknownKeys, STRICT } from '../../option-schema.js';
import { COLLECTIVE_TRANSPORTS } from './transport-choice.js';

/** Options of one collective call. */
export const CollectiveOptionsSchema = Type.Object(
  {
    /** How long the call may take, waiting for peers included (default 30 s). */
    timeoutMs: CallOptionsSchema.properties.timeoutMs,
    /** Aborts the call: it rejects with the signal's reason. */
    signal: CallOptionsSchema.properties.signal,
    /**
     * `allReduce` only: how a large typed array (64 KB and up, built-in op) travels. `'direct'` (the
     * default): reduce-scatter straight to each block's owner, then an all-gather; `'ring'`: a ring
     * of n−1 + n−1 neighbour steps. Every partition must choose the same.
     */
    algorithm: Type.Optional(OneOf(['direct', 'ring'] as const)),
    /**
     * `allReduce` only, for a typed array: write the result into the value passed, and return that
     * same array (default `false`: a new array). Saves allocating the result on every call of an
     * iterative computation; the array must not be touched until the call settles.
     */
    inPlace: Type.Optional(Type.Boolean({ problem: 'must be true or false' })),
    /**
     * How this partition sends the call's data: `'nats'` through nats-server, `'direct'` over the
     * partitions' own authenticated TCP sockets (TLS, both ends pinned, on a TLS bus), `'auto'`
     * direct in groups of up to 8 partitions, else for values of 64 KB and more. Each partition
     * chooses for what it sends (a receiver takes both); default: the cluster's
     * `collectiveTransport`, else `'auto'`.
     */
    transport: Type.Optional(OneOf(COLLECTIVE_TRANSPORTS)),
  },
  STRICT,
);

/** Options of one collective call. */
export type CollectiveOptions = Static<typeof CollectiveOptionsSchema>;

/**
 * Checks the options of collective `op` (e.g. `allReduce-ring`): what is not an options object, or a
 * field it does not have (named with the nearest known one), is an {@link InvalidOptionError}; a wrong
 * value is the collective's own `SPS_COLLECTIVE_ARGUMENT` error, as for its other arguments.
 */
export function checkCollectiveOptions(op: string, opts: unknown): void {
  // The quick check passes the options almost every call gives; the rest is for naming what is wrong.
  if (Value.Check(CollectiveOptionsSchema, opts)) return;
  // The call as the user made it (`allReduce`, not the path it took, `allReduce-ring`).
  const named = op.split('-')[0]!;
  const call = `ctx.${named}`;
  if (!isObject(opts)) throw new InvalidOptionError(call, `its options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  rejectUnknownKeys(CollectiveOptionsSchema, opts, call);
  const wrong = firstProblem(CollectiveOptionsSchema, opts);
  if (wrong) throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', named, `${wrong.path} ${wrong.problem}`);
}
