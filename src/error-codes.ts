/**
 * Every error code the library (and its Python package) gives an error, with whether a retry can
 * fix it and what it means: the one registry. The union type {@link ErrorCode}, the set
 * {@link NOT_RETRYABLE} and the table of docs/errors.md (written by `npm run protocol`) come from it.
 */
export const ERROR_CODES = {
  SPS_ABORTED: { retryable: true, meaning: 'an operation (`stop({ signal })`) was cut short by its signal' },
  SPS_BAD_ENDPOINT: { retryable: false, meaning: 'an endpoint name of the server holds characters other than letters, digits, `_` and `-`' },
  SPS_BAD_KEY: { retryable: false, meaning: 'a key (`partitionOf`, `requestByKey`, a `partitionBy` field) that is neither a string nor an integer' },
  SPS_BAD_SUBJECT: { retryable: true, meaning: '`ctx.publish` got a subject with wildcards, spaces or empty tokens' },
  SPS_BAD_TOKEN: { retryable: true, meaning: "HTTP 403: `POST /control/shutdown` without this attempt's own control token" },
  SPS_BODY_TOO_LARGE: { retryable: true, meaning: "HTTP 413: a request body above the HTTP server's limit" },
  SPS_BUS_CONNECT: { retryable: true, meaning: "a process could not connect to the run's NATS server" },
  SPS_CLUSTER_STATE: {
    retryable: true,
    meaning: "a call that the cluster's state does not allow (e.g. `start()` while running, `dashboard()` before `start()`)",
  },
  SPS_COLLECTIVE_ABORTED: { retryable: true, meaning: "a collective's participant failed or was replaced (the generation rose)" },
  SPS_COLLECTIVE_ARGUMENT: {
    retryable: true,
    meaning: 'a collective got a bad root, op or value, or a wrong option value (timeout, transport, algorithm, inPlace, signal)',
  },
  SPS_COLLECTIVE_DIRECT: { retryable: true, meaning: "a peer refused a direct collective socket's ticket; the call goes over NATS instead" },
  SPS_COLLECTIVE_MISMATCH: {
    retryable: true,
    meaning: 'partitions made different collective calls at one step, or passed values of different kinds or lengths',
  },
  SPS_COLLECTIVE_STATE: { retryable: true, meaning: 'a collective called before registration, or during shutdown' },
  SPS_COLLECTIVE_TIMEOUT: { retryable: true, meaning: 'a collective did not complete in time; `.missing` names the partitions' },
  SPS_COMPONENT_LOST: { retryable: true, meaning: "the run's nats-server, the driver's bus connection, or spark-submit went away" },
  SPS_DEAD_LETTER: {
    retryable: true,
    meaning:
      "an update failed and its [dead letter](updates.md#dead-letters) could not be stored (e.g. the stream is full); the update is not acknowledged, so the partition's next attempt replays it",
  },
  SPS_DEPENDENCY_MISSING: { retryable: true, meaning: 'nats-server, java, spark-submit or Node not found; the message names `npx sps setup`' },
  SPS_DRIVER_LOST: { retryable: true, meaning: 'a worker heard no heartbeat from the driver for `driverTimeoutMs` and left' },
  SPS_ENCODE: {
    retryable: true,
    meaning:
      'a value cannot travel (a function, a symbol, a cycle, a bigint beyond 64 bits: [the mapping](protocol.md#values)); the message names the endpoint and the path in the value. A reply fails its request (the partition serves on), a payload the call; a result record fails the attempt as `SPS_RESULT_WRITE` with the same path',
  },
  SPS_HANDLER_ERROR: { retryable: true, meaning: 'an endpoint or route handler threw an error without a string `code` of its own' },
  SPS_HTTP_LISTEN: { retryable: true, meaning: 'an HTTP server (partition or dashboard) could not listen on its address' },
  SPS_INVALID_OPTION: { retryable: false, meaning: "an option or a worker's environment variable is wrong; `.option` names it" },
  SPS_JOB_FAILED: { retryable: true, meaning: 'a partition was marked failed because the Spark job failed' },
  SPS_MALFORMED_MESSAGE: { retryable: true, meaning: 'a message on the bus does not decode or does not match the protocol' },
  SPS_NATS_CLOSED: { retryable: true, meaning: "a worker's NATS connection closed; the partition fails and is retried" },
  SPS_NATS_START: { retryable: true, meaning: 'the private nats-server failed to start' },
  SPS_NOT_PROVIDED: { retryable: true, meaning: "a partition server actor's effect was not provided (an internal wiring error)" },
  SPS_NOT_RUNNING: { retryable: true, meaning: 'a request to a cluster that is not running' },
  SPS_NOT_SERVING: { retryable: true, meaning: 'a stable-subject request reached a replaced attempt while the current one does not serve yet; retry' },
  SPS_NO_EVENTS: { retryable: true, meaning: '`ctx.publish` in a run without option `events`' },
  SPS_NO_JETSTREAM: {
    retryable: true,
    meaning: "option `updates`: the run's nats-server has no JetStream, or refused the updates stream (the message says why)",
  },
  SPS_NO_RESPONDER: { retryable: true, meaning: 'nobody serves the endpoint (the partition is not serving, or restarted)' },
  SPS_NO_ROUTE: { retryable: true, meaning: 'HTTP 404: no route for the method and path' },
  SPS_NO_SUPERVISOR: { retryable: true, meaning: "`sps status` / `sps request`: the cluster's supervisor did not answer" },
  SPS_NO_UPDATE_HANDLER: {
    retryable: false,
    meaning: 'option `updates` is set, but the server module has neither an `onUpdate` method nor an `update` option',
  },
  SPS_PARTITION_ERROR: { retryable: true, meaning: 'a partition server actor failed with an error that had no code of its own' },
  SPS_PARTITION_FAILED: { retryable: true, meaning: 'a partition ran out of attempts (`maxFailures`)' },
  SPS_PEERS_TIMEOUT: { retryable: true, meaning: '`ctx.waitForPeers()` did not see every partition serving in time' },
  SPS_PERMISSION_DENIED: { retryable: true, meaning: 'the bus refused the identity a publish or subscription' },
  SPS_PROCESS_EXIT: { retryable: true, meaning: 'a worker process exited before finishing; its attempt is failed and retried' },
  SPS_PYTHON_DRIVER: { retryable: true, meaning: 'the Python package and its Node driver process disagree (an unexpected answer, or a call out of order)' },
  SPS_REGISTER_REFUSED: { retryable: true, meaning: "the supervisor refused a partition's registration (no proof for that attempt, or a proof used before)" },
  SPS_REQUEST_FAILED: { retryable: true, meaning: 'a request failed with an error that carried no code' },
  SPS_REQUEST_TIMEOUT: { retryable: true, meaning: 'a request got no reply within its timeout' },
  SPS_RESULT_WRITE: { retryable: true, meaning: 'a result record could not be encoded or written to the result channel' },
  SPS_ROWS_LONG_OVERFLOW: { retryable: true, meaning: "a 64-bit integer beyond 2^53 with `longs: 'number'`" },
  SPS_ROWS_MALFORMED: { retryable: true, meaning: "a partition's row stream does not decode or was cut short" },
  SPS_ROWS_NOT_ARROW: { retryable: true, meaning: '`rows.arrow()` on rows that did not arrive as Arrow' },
  SPS_ROWS_READ_TWICE: { retryable: true, meaning: "a partition's rows were read a second time" },
  SPS_SERVER_MODULE: { retryable: false, meaning: 'the server module does not compile, load or export a server' },
  SPS_SETUP: { retryable: true, meaning: '`sps setup` could not install what it pins' },
  SPS_SPARK_DATASET: { retryable: true, meaning: 'a result dataset operation failed (unpersisted, too large to collect, unknown operation)' },
  SPS_SPARK_JOB: { retryable: true, meaning: 'the Spark job could not be submitted or run (a source, its format, the job file)' },
  SPS_SPARK_RUNNER: { retryable: true, meaning: 'the Spark runner did not answer, ended, or failed an order' },
  SPS_SPARK_SLOTS: { retryable: true, meaning: 'the Spark application has fewer task slots than partitions' },
  SPS_SPARK_START: { retryable: true, meaning: 'the Spark application did not start, or not in time' },
  SPS_START_TIMEOUT: { retryable: true, meaning: 'not every worker registered, or not every partition served, in time' },
  SPS_STATE: { retryable: true, meaning: 'Python package: `start()` while the cluster runs' },
  SPS_STOP_TIMEOUT: { retryable: true, meaning: 'results missing at stop' },
  SPS_TLS: {
    retryable: true,
    meaning:
      'a TLS certificate for the run could not be made (an invalid address or name), or a partition attempt could not make the certificate of its direct collective socket',
  },
  SPS_UNAUTHORIZED: { retryable: true, meaning: 'HTTP 401: the dashboard, or a WebSocket, without its token' },
  SPS_UNKNOWN_ENDPOINT: { retryable: true, meaning: 'the partition has no such endpoint' },
  SPS_UNKNOWN_PARTITION: { retryable: true, meaning: "no such partition in the cluster (or in the caller's membership view)" },
  SPS_UNSUPPORTED: {
    retryable: true,
    meaning:
      'Python package: what was asked is not supported in this setting (an RDD on a Spark Connect session, or `get_result_rdd()` there); the message says what works instead',
  },
  SPS_UPDATES_LOST: {
    retryable: false,
    meaning:
      "the run's updates stream, or a partition's consumer of it, was deleted during the run: the partition can no longer keep its state current, and no retry could replay it ([faults](updates.md#when-the-bus-fails))",
  },
  SPS_UPDATE_DECODE: {
    retryable: true,
    meaning: "an update's body is neither JSON nor msgpack (by its `Content-Type`); it goes to the [dead letters](updates.md#dead-letters)",
  },
  SPS_UPDATE_FAILED: {
    retryable: true,
    meaning: "the server's update handler threw on an update; it goes to the [dead letters](updates.md#dead-letters) and the partition applies the next",
  },
  SPS_UWS_LOAD: { retryable: false, meaning: "no uWebSockets.js binary fits this Node, platform and glibc (with `http: 'uws'`)" },
  SPS_WORKER_ERROR: { retryable: true, meaning: 'a worker ended without finishing and without an error of its own' },
} as const satisfies Record<string, { retryable: boolean; meaning: string }>;

/** A code of the library's own errors (`err.code`); an application's errors may carry codes of their own. */
export type ErrorCode = keyof typeof ERROR_CODES;
