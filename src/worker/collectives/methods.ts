import { CollectiveError } from '../../errors.js';
import * as algo from './algorithms.js';
import type { CollectiveOptions, Communicator } from './communicator.js';
import { isBuiltinOp, type ReduceOp } from './reduce.js';
import { arrayKind, type NumericArray } from './values.js';

/** The collectives of a partition context, bound to one partition's communicator. */
export interface CollectiveMethods {
  barrier(opts?: CollectiveOptions): Promise<void>;
  broadcast<T>(value: T, root: number, opts?: CollectiveOptions): Promise<T>;
  gather<T>(value: T, root: number, opts?: CollectiveOptions): Promise<T[] | undefined>;
  allGather<T>(value: T, opts?: CollectiveOptions): Promise<T[]>;
  allReduce<T>(value: T, op: ReduceOp<T>, opts?: CollectiveOptions): Promise<T>;
  reduceScatter<T extends NumericArray | number[]>(value: T, op: ReduceOp<T>, opts?: CollectiveOptions): Promise<T>;
}

/** Builds the collective methods over `comm`, checking every argument before anything is sent. */
export function collectiveMethods(comm: Communicator): CollectiveMethods {
  const n = comm.partitions;
  const everyoneElse = Array.from({ length: n }, (_, p) => p).filter((p) => p !== comm.partition);
  const checkRoot = (op: string, root: number): void => {
    if (!Number.isInteger(root) || root < 0 || root >= n)
      throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', op, `root ${root} is not a partition of 0..${n - 1}`);
  };
  const checkOp = (op: string, reduce: unknown): void => {
    if (!isBuiltinOp(reduce) && typeof reduce !== 'function') {
      throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', op, `op must be 'sum', 'min', 'max', 'prod' or a function (a, b) => c, got ${String(reduce)}`);
    }
  };
  return {
    barrier: (opts = {}) => comm.run('barrier', everyoneElse, opts, (ch) => algo.barrier(ch)),
    broadcast: async (value, root, opts = {}) => {
      checkRoot('broadcast', root);
      return comm.run('broadcast', comm.partition === root ? [] : [root], opts, (ch) => algo.broadcast(ch, value, root));
    },
    gather: async (value, root, opts = {}) => {
      checkRoot('gather', root);
      return comm.run('gather', comm.partition === root ? everyoneElse : [], opts, (ch) => algo.gather(ch, value, root));
    },
    allGather: (value, opts = {}) => comm.run('allGather', everyoneElse, opts, (ch) => algo.allGather(ch, value)),
    allReduce: async (value, op, opts = {}) => {
      checkOp('allReduce', op);
      // Its options' values (algorithm, inPlace) are checked by comm.run before anything is sent.
      const inPlace = opts.inPlace === true;
      if (inPlace && arrayKind(value) === undefined) {
        throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', 'allReduce', 'inPlace needs a typed array (the result is written into it)');
      }
      // The path is part of the operation's name, so partitions that disagree on it (different lengths) say so.
      const ring = opts.algorithm === 'ring';
      const name = algo.takesLargePath(value, op as ReduceOp, n) ? (ring ? 'allReduce-ring' : 'allReduce-chunked') : 'allReduce';
      // The ring hears only its left neighbour.
      const expect = ring && n > 1 ? [(comm.partition + n - 1) % n] : everyoneElse;
      return comm.run(name, name === 'allReduce-ring' ? expect : everyoneElse, opts, (ch) => algo.allReduce(ch, value, op as ReduceOp, ring, inPlace));
    },
    reduceScatter: async (value, op, opts = {}) => {
      checkOp('reduceScatter', op);
      return comm.run('reduceScatter', everyoneElse, opts, (ch) => algo.reduceScatter(ch, value, op as ReduceOp));
    },
  };
}
