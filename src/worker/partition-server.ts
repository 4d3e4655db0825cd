import type { HttpServer } from '../transport/http.js';
import { SparkPartitionServerError } from '../errors.js';
import type { EndpointHandler, PartitionContext } from './context.js';
import type { Rows } from './rows.js';
import type { RecordBatch, Table } from 'apache-arrow';
import type { Update } from './updates-consumer.js';

/**
 * What a partition returns on shutdown: records, or an Arrow `Table` / `RecordBatch` — a result
 * with a schema, which on Spark becomes a typed DataFrame (see `ResultDataset`).
 */
export type PartitionResult<Result> = Iterable<Result> | AsyncIterable<Result> | Table | RecordBatch;

/** Marks partition servers without relying on `instanceof` (user modules may load another copy of this package). */
export const SERVER_BRAND = Symbol.for('spark-partition-server.PartitionServer');

/** Options of a {@link PartitionServer} used without subclassing. */
export interface PartitionServerOptions<Row = unknown, Config = unknown, Result = unknown> {
  /**
   * Builds the partition's state from its rows. Default: collects them into `server.rows`.
   * A throw fails the partition; the error is reported to the supervisor.
   */
  init?: (rows: Rows<Row>, ctx: PartitionContext<Config>) => void | Promise<void>;
  /** NATS endpoints by name (letters, digits, `_` and `-`). */
  endpoints?: Record<string, EndpointHandler<Config>>;
  /** Builds the records this partition returns when it shuts down. Default: none. */
  result?: (ctx: PartitionContext<Config>) => PartitionResult<Result> | Promise<PartitionResult<Result>>;
  /** Applies one live update of a key this partition owns (option `updates` of the cluster; see {@link PartitionServer.onUpdate}). */
  update?: (update: Update, ctx: PartitionContext<Config>) => void | Promise<void>;
}

/**
 * A server that runs on one partition and answers NATS requests. Use it as is with options, or
 * subclass it and override {@link initPartition}, {@link endpoints} and {@link buildResult}.
 *
 * The worker process loads it from a module: export an instance, the class, or a factory
 * `(config) => server`.
 */
export class PartitionServer<Row = unknown, Config = unknown, Result = unknown> {
  /** The partition's rows, when the default `initPartition` collected them. */
  rows: Row[] = [];
  /** The options this server was created with. */
  protected readonly options: PartitionServerOptions<Row, Config, Result>;

  constructor(options: PartitionServerOptions<Row, Config, Result> = {}) {
    this.options = options;
  }

  /** Builds state from the partition's rows before the server is registered. */
  async initPartition(rows: Rows<Row>, ctx: PartitionContext<Config>): Promise<void> {
    if (this.options.init) {
      await this.options.init(rows, ctx);
      return;
    }
    for await (const batch of rows.batches()) for (const row of batch) this.rows.push(row);
  }

  /** The NATS endpoints this partition answers, by name. */
  endpoints(_ctx: PartitionContext<Config>): Record<string, EndpointHandler<Config>> {
    return this.options.endpoints ?? {};
  }

  /**
   * The records returned to the driver when the partition shuts down, or an Arrow table / record
   * batch (a result with a schema: the driver gets its rows as objects, and on Spark the result
   * dataset has its columns and types).
   */
  buildResult(ctx: PartitionContext<Config>): PartitionResult<Result> | Promise<PartitionResult<Result>> {
    return this.options.result ? this.options.result(ctx) : [];
  }

  /**
   * Applies one live update (the cluster's option `updates`, docs/updates.md): called for each
   * update of a key this partition owns, one at a time in stream order, from the moment it serves
   * until it drains. A retried attempt gets every update since the run started again, after its
   * rows: keep it deterministic (the same rows and updates give the same state). A throw sends
   * the update to the dead letters and the partition goes on.
   */
  onUpdate(update: Update, ctx: PartitionContext<Config>): void | Promise<void> {
    if (this.options.update) return this.options.update(update, ctx);
    throw new SparkPartitionServerError(
      'SPS_NO_UPDATE_HANDLER',
      'the cluster has option updates, but the partition server has neither an onUpdate method nor an update option',
    );
  }

  /**
   * True when this server applies updates (it overrides {@link onUpdate} or has option `update`).
   * @internal used by the worker, which refuses to serve updates it would only dead-letter.
   */
  handlesUpdates(): boolean {
    return this.options.update !== undefined || this.onUpdate !== PartitionServer.prototype.onUpdate;
  }

  /** Called when draining starts, before {@link buildResult}. */
  onShutdown(_ctx: PartitionContext<Config>): void | Promise<void> {}

  /**
   * Creates the HTTP server of this partition, or `undefined` for a NATS-only server.
   * @internal used by the worker; {@link HttpPartitionServer} overrides it.
   */
  createHttpServer(_ctx: PartitionContext<Config>): HttpServer | undefined {
    return undefined;
  }
}

(PartitionServer.prototype as unknown as Record<symbol, boolean>)[SERVER_BRAND] = true;

/** True when `value` is a partition server instance (from any copy of this package). */
export function isPartitionServer(value: unknown): value is PartitionServer {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SERVER_BRAND] === true;
}

/** True when `value` is a partition server class. */
export function isPartitionServerClass(value: unknown): value is new () => PartitionServer {
  return typeof value === 'function' && (value.prototype as Record<symbol, unknown> | undefined)?.[SERVER_BRAND] === true;
}
