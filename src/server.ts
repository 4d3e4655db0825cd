/**
 * `spark-partition-server/server`: what a partition server module needs, and nothing of the
 * driver (no Cluster, launchers, Spark, dashboard or certificates), so a worker that imports it
 * loads only the worker's own runtime. The package root exports all of this too.
 * @packageDocumentation
 */
export { PartitionServer } from './worker/partition-server.js';
export type { PartitionServerOptions, PartitionResult } from './worker/partition-server.js';
export { HttpPartitionServer, APP_PREFIX } from './worker/http-partition-server.js';
export type { HttpPartitionServerOptions, HttpRouter } from './worker/http-partition-server.js';
export type { PartitionContext, EndpointHandler } from './worker/context.js';
export type { Update, UpdatesStatus } from './worker/updates-consumer.js';
export type { PublishAck, PublishOptions } from './worker/events-publisher.js';
export type { CallOptions, PartitionReply } from './protocol/call-options.js';
export type { CollectiveMethods } from './worker/collectives/methods.js';
export type { ElasticControls, ElasticReset, ElasticRunOptions, ElasticState } from './worker/elastic/elastic-state.js';
export type { CollectiveOptions, CollectiveStats, CollectiveTransport } from './worker/collectives/communicator.js';
export type { BuiltinOp, ReduceOp, Reducible } from './worker/collectives/reduce.js';
export type { NumericArray } from './worker/collectives/values.js';
export type { Rows } from './worker/rows.js';
export type { Logger, LogLevel, LogMethod } from './log/logger.js';
export type { LongMode } from './worker/arrow-rows.js';
export type { RowFormat } from './protocol/framing.js';
export { httpResponse } from './transport/http.js';
export type {
  HttpHandler,
  HttpMethod,
  HttpRequest,
  HttpResponse,
  HttpResult,
  HttpServer,
  HttpServerFactory,
  WsConnection,
  WsHandler,
} from './transport/http.js';
export { createUwsServer } from './transport/uws-http.js';
export { createNodeHttpServer } from './transport/node-http.js';
export type { HttpChoice } from './transport/http-choice.js';
export type { Member } from './protocol/types.js';
export {
  SparkPartitionServerError,
  RequestError,
  AbortedError,
  CollectiveError,
  CollectiveAbortedError,
  CollectiveTimeoutError,
  NOT_RETRYABLE,
} from './errors.js';
