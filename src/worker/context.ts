import type { NatsConnection } from '@nats-io/nats-core';
import type { Member } from '../protocol/types.js';
import type { PartitionKey } from '../protocol/key-partition.js';
import type { CollectiveMethods } from './collectives/methods.js';
import type { CollectiveStats } from './collectives/communicator.js';
import type { CallOptions, PartitionReply } from '../protocol/call-options.js';
import type { Logger } from '../log/logger.js';
import type { UpdatesStatus } from './updates-consumer.js';
import type { PublishAck, PublishOptions } from './events-publisher.js';
import type { ElasticRunOptions, ElasticState } from './elastic/elastic-state.js';

/**
 * What a partition server knows about itself and its cluster while it runs, and how it computes
 * with its peers: requests, and MPI-like collectives. Every partition must call the same
 * collectives in the same order (each call is numbered within the cluster's generation); they work
 * once the partition is registered (in endpoints, results, or tasks started from them), not during
 * `initPartition`. Each takes `{ timeoutMs, signal }` last (default timeout 30 s).
 *
 * - `barrier()` resolves once every partition has called it.
 * - `broadcast(value, root)` resolves with the root's value on every partition.
 * - `gather(value, root)` resolves with every partition's value (in partition order) on the root, `undefined` elsewhere.
 * - `allGather(value)` resolves with every partition's value, in partition order, everywhere.
 * - `allReduce(value, op)` resolves with `op` applied over every partition's value in partition
 *   order: a number, bigint, array of numbers or typed array with `'sum' | 'min' | 'max' | 'prod'`
 *   (element-wise), or any msgpack values with a function `(a, b) => c`.
 * - `reduceScatter(vector, op)` resolves with this partition's block (elements
 *   `[⌊i·L/n⌋, ⌊(i+1)·L/n⌋)`) of the element-wise reduction of every partition's vector.
 *
 * They reject with `CollectiveAbortedError` (`SPS_COLLECTIVE_ABORTED`) when a participant's attempt
 * failed or was replaced, `CollectiveTimeoutError` (`SPS_COLLECTIVE_TIMEOUT`, `.missing`) when
 * peers never arrived, `CollectiveError` for bad arguments or partitions that disagree, and the
 * signal's reason when aborted.
 */
export interface PartitionContext<Config = unknown> extends CollectiveMethods {
  /** This partition's index. */
  readonly partition: number;
  /** Which attempt of the partition this process is (0 first; Spark's task retries count up). */
  readonly attempt: number;
  /** Id of this cluster run (namespaces its NATS subjects). */
  readonly clusterId: string;
  /** Number of partitions in the cluster. */
  readonly partitions: number;
  /** The `config` object given to the cluster on the driver. */
  readonly config: Config;
  /**
   * The NATS connection of this partition, for application subjects of your own. On the private
   * bus this partition's identity may publish and subscribe under `sps.<clusterId>.app.>` (and
   * call peers' endpoints); anything else is refused by the server.
   */
  readonly nats: NatsConnection;
  /** The latest membership view published by the supervisor (all partitions' current attempts). */
  peers(): Member[];
  /**
   * Resolves with the membership once every partition is serving (for peer-to-peer computations).
   * Takes a timeout in ms (default 30 s) or `{ timeoutMs, signal }`; rejects with `SPS_PEERS_TIMEOUT`
   * when the time runs out, or with the signal's reason when it aborts.
   */
  waitForPeers(opts?: number | CallOptions): Promise<Member[]>;
  /**
   * Calls an endpoint of another partition's current attempt (or this one's) over NATS. The last
   * argument is a timeout in ms or `{ timeoutMs, signal }`; the timeout defaults to the cluster's
   * `requestTimeoutMs` (10 s unless set), and an aborted signal rejects the call with its reason.
   * @throws RequestError with the peer's error code when it fails or times out.
   */
  request<T = unknown>(partition: number, endpoint: string, payload?: unknown, opts?: number | CallOptions): Promise<T>;
  /** The partition that owns `key` (a string or an integer): the same function as `cluster.partitionOf` (docs/keys.md). */
  partitionOf(key: PartitionKey): number;
  /**
   * Calls `endpoint` on the partition that owns `key` (this one, possibly), as `request` does.
   * @throws KeyError (`SPS_BAD_KEY`) for a key that is not a string or an integer.
   */
  requestByKey<T = unknown>(key: PartitionKey, endpoint: string, payload?: unknown, opts?: number | CallOptions): Promise<T>;
  /**
   * Calls an endpoint of every partition (this one included) at once; resolves with each
   * partition's reply or error, by partition, as the driver's `cluster.requestAll` does. The last
   * argument is as for `request`; an aborted signal rejects the whole call with its reason.
   */
  requestAll<T = unknown>(endpoint: string, payload?: unknown, opts?: number | CallOptions): Promise<Map<number, PartitionReply<T>>>;
  /** The cluster's generation as this partition last heard it (rises when a partition's attempt fails or is replaced). */
  readonly generation: number;
  /** What this partition counted of the collective traffic it dropped. */
  collectiveStats(): CollectiveStats;
  /**
   * A computation's state that survives a lost partition (docs/collectives.md#elastic-state): a copy
   * of `initial`'s fields (plain data, the same on every partition, e.g. `{ iteration: 0, model }`),
   * with `commit()` and `onReset(callback)`. Run the computation with {@link elasticRun}.
   * @throws CollectiveError (`SPS_COLLECTIVE_ARGUMENT`) for an initial state that is not an object of plain data.
   */
  elastic<T extends object>(initial: T): ElasticState<T>;
  /**
   * Runs `fn(state)` on every partition (call it from the same endpoint on each): puts every
   * partition in step at the last complete commit, then runs `fn`; when a collective aborts because
   * a peer's attempt failed or was replaced, waits for its new attempt (which the driver asks to run
   * the same endpoint), restores every partition to the last complete commit (the new attempt gets
   * it from a survivor), calls the reset callbacks and runs `fn` again. Resolves with what `fn`
   * returns; rejects with anything else it throws.
   */
  elasticRun<T extends object, R>(state: ElasticState<T>, fn: (state: ElasticState<T>) => R | Promise<R>, opts?: ElasticRunOptions): Promise<R>;
  /**
   * Writes an `info` record to the worker's log, bound to partition and attempt. Strings go
   * as they are, errors with their code and stack (and cause), anything else as JSON (BigInts and
   * cycles included, never a throw).
   */
  log(...args: unknown[]): void;
  /**
   * This partition's logger (pino): `ctx.logger.info({ key }, 'message')` writes a record with
   * levels and fields, bound to `cluster`, `partition` and `attempt`, that reaches the driver's
   * logger as a record of its own (see the README's "Logs").
   */
  readonly logger: Logger;
  /**
   * Where this partition stands in the run's live updates (option `updates`): the last stream
   * sequence handled, how many were applied and failed, and how many are pending; `undefined`
   * in a run without updates, or before the partition serves.
   */
  updates(): UpdatesStatus | undefined;
  /**
   * Stores an event in the run's events stream (option `events`; docs/updates.md#events) under
   * `sps.<id>.evt.<partition>.<subject>` and resolves once the stream acknowledged it. Clients
   * read the stream with the client credentials. Rejects with `SPS_NO_EVENTS` in a run without
   * events, `SPS_BAD_SUBJECT` for a subject with wildcards or spaces.
   */
  publish(subject: string, data: Uint8Array | string, options?: PublishOptions): Promise<PublishAck>;
}

/**
 * A NATS endpoint handler: receives the decoded payload, returns the reply (or throws). A reply
 * msgpack cannot carry (a BigInt beyond 64 bits, a circular object, a function) reaches the caller
 * as an `SPS_ENCODE` error; the partition keeps serving.
 */
export type EndpointHandler<Config = unknown> = (payload: unknown, ctx: PartitionContext<Config>) => unknown;
