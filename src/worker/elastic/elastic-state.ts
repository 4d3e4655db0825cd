/**
 * Elastic state: a computation's state that survives a lost partition. Each partition keeps
 * snapshots of the state it committed; when a collective aborts because the generation rose,
 * {@link elasticRun} waits for the replaced partition's new attempt, puts every partition back to
 * the last commit the group completed (the new attempt receives it from a survivor, over the
 * collectives: chunked, direct when the path is there, else NATS), calls the reset callbacks and
 * runs the computation again from there. The decisions are pure (`plan.ts`); this file does them.
 */
import { CollectiveAbortedError, CollectiveError } from '../../errors.js';
import * as algo from '../collectives/algorithms.js';
import type { CollectiveOptions, Communicator } from '../collectives/communicator.js';
import { checkOptionsBag, fieldsOf } from '../../option-fields.js';
import { commitDisagreement, restorePlan, restoreRole, type CommitHolding } from './plan.js';

/** What a reset callback hears: the commit the group went back to, and the generation it now computes in. */
export interface ElasticReset {
  commit: number;
  generation: number;
}

/** The methods elastic state adds to the user's fields. */
export interface ElasticControls {
  /**
   * Commits the state as it is now: a snapshot is taken, then every partition's commit number is
   * agreed in one collective (a commit is complete only once every partition made it). Call it at
   * the same points on every partition. Resolves with the commit's number (1, 2, …).
   * @throws CollectiveError (`SPS_COLLECTIVE_MISMATCH`) when partitions committed different numbers.
   */
  commit(opts?: Pick<CollectiveOptions, 'timeoutMs' | 'signal'>): Promise<number>;
  /** Adds a callback that runs (awaited, in order) after every restore, before the computation runs again. */
  onReset(callback: (reset: ElasticReset) => void | Promise<void>): void;
  /** The last commit this partition saw complete (0: none yet, the initial state). */
  readonly committed: number;
}

/**
 * The state of an elastic computation: the fields given to `ctx.elastic` (read and change them as
 * the computation goes), and {@link ElasticControls}. The fields are plain data (numbers, strings,
 * booleans, bigints, arrays, plain objects, typed arrays), the same on every partition, as in
 * data-parallel training (the model, the iteration): a restore gives every partition one survivor's.
 * A restore replaces the fields' values: read them from the state again after a reset.
 */
export type ElasticState<T extends object> = T & ElasticControls;

/** Options of `ctx.elasticRun`. */
export interface ElasticRunOptions {
  /**
   * How long a restore may wait for every partition (a new attempt starting and being asked to run
   * included) and take, per collective (default 120 s).
   */
  restoreTimeoutMs?: number;
  /** Called (awaited) when a restore begins after a failure, before any collective of it. */
  onRestore?: (info: { generation: number }) => void | Promise<void>;
}

const RUN_OPTION_FIELDS = fieldsOf<ElasticRunOptions>({ restoreTimeoutMs: true, onRestore: true });

/** Default of {@link ElasticRunOptions.restoreTimeoutMs}. */
export const DEFAULT_RESTORE_TIMEOUT_MS = 120_000;

const CONTROLS = new Set(['commit', 'onReset', 'committed']);

type Snapshot = { k: number; data: Record<string, unknown> };

/** What a state keeps besides the user's fields. */
interface Inner {
  comm: Communicator;
  committed: Snapshot;
  pending: Snapshot | undefined;
  /** A snapshot no longer needed, whose typed arrays the next commit writes into. */
  spare: Snapshot | undefined;
  resets: ((reset: ElasticReset) => void | Promise<void>)[];
}

const inners = new WeakMap<object, Inner>();

/** The state's own fields (its controls live on its prototype). */
function ownFields(state: object): Record<string, unknown> {
  return { ...(state as Record<string, unknown>) };
}

function othersOf(comm: Communicator): number[] {
  return Array.from({ length: comm.partitions }, (_, p) => p).filter((p) => p !== comm.partition);
}

/**
 * A deep copy of `value`, written into `into`'s typed arrays where kind and length match: an
 * iterative computation commits arrays of the same shape every time, and copying into the
 * previous snapshot's memory is much cheaper than `structuredClone` (`npm run bench -- --only elastic`).
 */
function copyInto(value: unknown, into: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const array = value as unknown as Float64Array;
    const target = into as Float64Array | undefined;
    if (target?.constructor === array.constructor && target.length === array.length) {
      target.set(array);
      return target;
    }
    return new (array.constructor as Float64ArrayConstructor)(array);
  }
  if (Array.isArray(value)) return value.map((v, i) => copyInto(v, Array.isArray(into) ? (into as unknown[])[i] : undefined));
  if (typeof value === 'object' && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const from = typeof into === 'object' && into !== null ? (into as Record<string, unknown>) : {};
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = copyInto(v, from[k]);
    return out;
  }
  return typeof value === 'object' || typeof value === 'function' ? structuredClone(value) : value;
}

/** Replaces the state's fields with a copy of `data` (the snapshot stays as it was). */
function assign(state: object, data: Record<string, unknown>): void {
  for (const key of Object.keys(state)) delete (state as Record<string, unknown>)[key];
  Object.assign(state, structuredClone(data));
}

/** A new elastic state over `comm`, starting from a copy of `initial` (commit 0). */
export function createElasticState<T extends object>(comm: Communicator, initial: T): ElasticState<T> {
  if (typeof initial !== 'object' || initial === null || Array.isArray(initial)) {
    throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elastic', 'the initial state must be an object of fields');
  }
  const clash = Object.keys(initial).filter((k) => CONTROLS.has(k));
  if (clash.length) throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elastic', `field name(s) ${clash.join(', ')} are the state's own methods`);
  let data: Record<string, unknown>;
  try {
    data = structuredClone(ownFields(initial));
  } catch (err) {
    throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elastic', `the initial state is not plain data: ${(err as Error).message}`);
  }
  const inner: Inner = { comm, committed: { k: 0, data }, pending: undefined, spare: undefined, resets: [] };
  const controls: ElasticControls = {
    commit: (opts = {}) => commit(state, inner, opts),
    onReset: (callback) => {
      if (typeof callback !== 'function') throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elastic', 'onReset takes a function');
      inner.resets.push(callback);
    },
    get committed() {
      return inner.committed.k;
    },
  };
  // The controls live on the prototype, so the state's own keys are exactly the user's fields.
  const state = Object.assign(Object.create(controls) as object, structuredClone(data)) as ElasticState<T>;
  inners.set(state, inner);
  return state;
}

async function commit(state: object, inner: Inner, opts: Pick<CollectiveOptions, 'timeoutMs' | 'signal'>): Promise<number> {
  const k = inner.committed.k + 1;
  // The snapshot is the state as of the call; it counts only once every partition made it.
  const spare = inner.spare;
  inner.spare = undefined;
  inner.pending = { k, data: copyInto(ownFields(state), spare?.data) as Record<string, unknown> };
  const numbers = await inner.comm.run('elastic-commit', othersOf(inner.comm), opts, (ch) => algo.allGather(ch, k));
  const why = commitDisagreement(numbers);
  if (why) throw new CollectiveError('SPS_COLLECTIVE_MISMATCH', 'elastic-commit', why);
  inner.spare = inner.committed.k === 0 ? undefined : inner.committed;
  inner.committed = inner.pending;
  inner.pending = undefined;
  return k;
}

function checkHoldings(holdings: unknown[]): CommitHolding[] {
  for (const [p, h] of holdings.entries()) {
    const ok =
      typeof h === 'object' &&
      h !== null &&
      Number.isSafeInteger((h as CommitHolding).committed) &&
      (h as CommitHolding).committed >= 0 &&
      ((h as CommitHolding).pending === undefined || Number.isSafeInteger((h as CommitHolding).pending));
    if (!ok) throw new CollectiveError('SPS_COLLECTIVE_MISMATCH', 'elastic-restore', `partition ${p} sent a malformed commit holding`);
  }
  return holdings as CommitHolding[];
}

/**
 * Puts every partition back to the last commit the group completed. Resolves with that commit and
 * the generation the restore ran in (the computation must run in that one).
 */
async function restore(state: object, inner: Inner, timeoutMs: number): Promise<ElasticReset> {
  const { comm } = inner;
  const holding: CommitHolding = { committed: inner.committed.k, ...(inner.pending ? { pending: inner.pending.k } : {}) };
  let generation = -1;
  const holdings = await comm.run('elastic-restore', othersOf(comm), { timeoutMs }, (ch) => {
    // The body starts as the call is numbered: this is the call's generation.
    generation = comm.stats.generation;
    return algo.allGather(ch, holding);
  });
  const plan = restorePlan(checkHoldings(holdings));
  const role = restoreRole(plan, comm.partition, holding);
  let data = role === 'pending' ? inner.pending!.data : inner.committed.data;
  if (plan.receivers.length > 0) {
    // Every partition makes this call (calls are numbered); only the source sends, only receivers hear.
    const expect = role === 'receive' ? [plan.source] : [];
    const got = await comm.run('elastic-state', expect, { timeoutMs }, (ch) => algo.sendTo<unknown>(ch, data, plan.source, plan.receivers));
    if (role === 'receive') {
      if (typeof got !== 'object' || got === null || Array.isArray(got)) {
        throw new CollectiveError('SPS_COLLECTIVE_MISMATCH', 'elastic-state', `partition ${plan.source} sent a state that is not an object of fields`);
      }
      data = got as Record<string, unknown>;
    }
  }
  inner.committed = { k: plan.commit, data };
  inner.pending = undefined;
  assign(state, data);
  return { commit: plan.commit, generation };
}

/** Whether `err` ends an elastic run's attempt in a way a restore fixes: a peer was lost, not this attempt. */
function restorable(err: unknown, partition: number): boolean {
  return err instanceof CollectiveAbortedError && !err.partitions.includes(partition);
}

/**
 * Runs `fn(state)` on every partition: first puts every partition in step (the state of the last
 * complete commit, which is the initial state on a first run), then runs `fn`; when a collective
 * aborts because a peer was lost, restores and runs `fn` again, for as long as it takes. Rejects with
 * anything else `fn` throws, and with `CollectiveAbortedError` when this partition's own attempt
 * was replaced. One elastic run at a time per partition.
 */
export async function elasticRun<T extends object, R>(
  state: ElasticState<T>,
  fn: (state: ElasticState<T>) => R | Promise<R>,
  opts: ElasticRunOptions = {},
): Promise<R> {
  const inner = inners.get(state);
  if (!inner) throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elasticRun', 'the state was not made by ctx.elastic');
  checkOptionsBag(opts, RUN_OPTION_FIELDS, 'ctx.elasticRun');
  const { comm } = inner;
  const timeoutMs = opts.restoreTimeoutMs ?? DEFAULT_RESTORE_TIMEOUT_MS;
  if (!(timeoutMs > 0))
    throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elasticRun', `restoreTimeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  if (opts.onRestore !== undefined && typeof opts.onRestore !== 'function') {
    throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'elasticRun', 'onRestore must be a function');
  }
  let failed = false;
  for (;;) {
    try {
      if (failed) await opts.onRestore?.({ generation: comm.stats.generation });
      const reset = await restore(state, inner, timeoutMs);
      if (failed) for (const callback of inner.resets) await callback(reset);
      comm.pin(reset.generation);
      try {
        return await fn(state);
      } finally {
        comm.pin(undefined);
      }
    } catch (err) {
      if (!restorable(err, comm.partition)) throw err;
      failed = true;
    }
  }
}
