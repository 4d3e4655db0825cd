import type { NatsConnection } from '@nats-io/nats-core';
import type { Member } from '../protocol/types.js';

/** What a partition server knows about itself and its cluster while it runs. */
export interface PartitionContext<Config = unknown> {
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
  /** Resolves with the membership once every partition is serving (for peer-to-peer computations). */
  waitForPeers(timeoutMs?: number): Promise<Member[]>;
  /**
   * Calls an endpoint of another partition's current attempt (or this one's) over NATS.
   * `timeoutMs` defaults to the cluster's `requestTimeoutMs` (10 s unless set).
   * @throws RequestError with the peer's error code when it fails or times out.
   */
  request<T = unknown>(partition: number, endpoint: string, payload?: unknown, timeoutMs?: number): Promise<T>;
  /**
   * Writes a line to the worker's log (stderr), prefixed with partition and attempt. Strings go
   * as they are, errors with their code and stack (and cause), anything else as JSON (BigInts and
   * cycles included, never a throw).
   */
  log(...args: unknown[]): void;
}

/**
 * A NATS endpoint handler: receives the decoded payload, returns the reply (or throws). A reply
 * msgpack cannot carry (a BigInt beyond 64 bits, a circular object, a function) reaches the caller
 * as an `SPS_ENCODE` error; the partition keeps serving.
 */
export type EndpointHandler<Config = unknown> = (payload: unknown, ctx: PartitionContext<Config>) => unknown;
