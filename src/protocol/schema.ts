import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';
import { PARTITION_STATES } from './types.js';
import { FRAMING } from './framing.js';

/**
 * The one definition of the wire protocol. Every message on the bus is a msgpack map
 * `{ v: 1, t: <type>, ...fields }`; this file says, for each type, which fields it carries. The
 * TypeScript types and decoders come from these schemas, and `protocol.schema.json` (generated from
 * them by `npm run protocol`, checked by a test) is what the Python runner validates against.
 *
 * Identity is never a field: who sent a message is told by the subject it came on, which the NATS
 * server only lets that sender publish to.
 */

const Int = (min = 0) => Type.Integer({ minimum: min, maximum: Number.MAX_SAFE_INTEGER });
const Str = (maxLength = 4096) => Type.String({ maxLength });
/** A closed object: a field the protocol does not define makes the message malformed. */
const Obj = <P extends TProperties>(props: P) => Type.Object(props, { additionalProperties: false });
const Name = Type.String({ pattern: '^[A-Za-z0-9_-]+$', maxLength: 128 });
/** A SHA-256 digest (of a certificate's DER), in lowercase hex. */
const Fingerprint = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** An error as it travels between processes. */
export const WireErrorSchema = Obj({ code: Str(128), message: Str(16384) });

/**
 * Why a partition's attempt failed, as its worker reports it (in `state` and `failure`): the error's
 * code and message, its stack (source-mapped for a compiled TypeScript server), and `retryable:
 * false` when a retry cannot fix it (the same program and options fail the same way), so the
 * partition fails at once instead of being retried.
 */
export const FailureReportSchema = Obj({ code: Str(128), message: Str(16384), stack: Type.Optional(Str(16384)), retryable: Type.Optional(Type.Boolean()) });

/** One partition's current attempt, as the supervisor publishes it. */
export const MemberSchema = Obj({
  partition: Int(),
  attempt: Int(),
  host: Str(255),
  port: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()]),
  pid: Int(),
  state: Type.Union(PARTITION_STATES.map((s) => Type.Literal(s))),
  endpoints: Type.Array(Name, { maxItems: 1024 }),
  error: Type.Optional(WireErrorSchema),
  /** Port of the partition's direct collective socket on `host` (absent: collectives only over NATS). */
  peerPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  /** SHA-256 (hex) of the certificate of the attempt's direct socket, which then speaks TLS (absent: plain TCP). */
  peerCert: Type.Optional(Fingerprint),
});

const Members = Type.Array(MemberSchema, { maxItems: 65536 });

const Ms = Type.Number({ minimum: 0, maximum: 1e9 });

/** One endpoint's request counters in a `stats` report; `name` is e.g. `nats get_list` or `http GET /app/sum`. */
export const RequestStatsSchema = Obj({
  /** The endpoint, `nats <endpoint>` or `http <METHOD> <path>`; `total` for the sum over all of them. */
  name: Str(300),
  /** Requests answered since the attempt began. */
  requests: Int(),
  /** Of those, the requests whose handler threw or rejected. */
  errors: Int(),
  /** Median latency (ms) over the last report's interval; absent when it had no request. */
  p50: Type.Optional(Ms),
  /** 99th-percentile latency (ms) over the last report's interval; absent when it had no request. */
  p99: Type.Optional(Ms),
});

/** Fields of every message type, by type. */
export const MESSAGE_SCHEMAS = {
  // --- control: partitions ↔ supervisor (`sps.<cluster>.ctl.*`) ---
  /** A partition's attempt asks to join (on `ctl.register.<partition>`). */
  register: Obj({
    attempt: Int(),
    host: Str(255),
    port: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()]),
    pid: Int(),
    endpoints: Type.Array(Name, { maxItems: 1024 }),
    /** Port of the attempt's direct collective socket on `host`, if it opened one. */
    peerPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /**
     * SHA-256 (hex) of the certificate the attempt made for its direct socket (a TLS bus): peers
     * pin it when they connect, and the attempt presents it when it connects to them.
     */
    peerCert: Type.Optional(Fingerprint),
    /**
     * The attempt's registration proof, which its launcher issued with the attempt (an HMAC of the
     * attempt under its partition's key): a registration for an attempt no launcher started has none.
     */
    proof: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  }),
  /** The supervisor's answer to `register`. */
  'register-ack': Obj({
    accepted: Type.Boolean(),
    shutdown: Type.Boolean(),
    reason: Type.Optional(Str()),
    epoch: Int(),
    generation: Int(),
    members: Members,
  }),
  /** A partition's state change (on `ctl.state.<partition>`). */
  state: Obj({
    attempt: Int(),
    state: Type.Union(PARTITION_STATES.map((s) => Type.Literal(s))),
    pid: Int(),
    error: Type.Optional(FailureReportSchema),
  }),
  /**
   * A failed worker's last frame on its result channel (instead of the end-of-results batch), for
   * the process that launched it: the Spark runner does not retry a failure that is not retryable.
   */
  failure: Obj({ error: FailureReportSchema }),
  /**
   * A partition's request counters (on `ctl.stats.<partition>`, at a heartbeat tick where they
   * changed since the last report, and once more when the rate is back at rest): per endpoint and in total, requests and errors since the attempt began, and the
   * latency percentiles (ms) of the requests answered in the last `intervalMs` (absent when none).
   */
  stats: Obj({ attempt: Int(), intervalMs: Int(), total: RequestStatsSchema, endpoints: Type.Array(RequestStatsSchema, { maxItems: 1024 }) }),
  /**
   * One transition of a partition's server actor (on `ctl.inspect.<partition>`), sent only when the
   * driver asked for inspection: `seq` counts from 0 per attempt, `state` and `step` (a sub-state of
   * `initializing`) are where it went, `event` the type of the event that took it there.
   */
  transition: Obj({
    attempt: Int(),
    seq: Int(),
    state: Type.Union(PARTITION_STATES.map((s) => Type.Literal(s))),
    step: Type.Optional(Name),
    status: Type.Union([Type.Literal('active'), Type.Literal('done'), Type.Literal('error'), Type.Literal('stopped')]),
    event: Str(256),
    error: Type.Optional(WireErrorSchema),
  }),
  /** The supervisor tells every partition to drain (only the driver may publish it). */
  shutdown: Obj({}),
  /** The driver is alive (only the driver may publish it); partitions leave when it falls silent. */
  heartbeat: Obj({}),
  /**
   * The whole membership view with its epoch, and the generation, which rises only when a member's
   * attempt fails or is replaced (collectives of an older one abort): the reply to `members-get`.
   */
  members: Obj({ epoch: Int(), generation: Int(), members: Members }),
  /**
   * What changed in the membership between epochs `from` and `epoch`: the members whose record
   * changed, each whole, and the generation at `epoch` (only the driver may publish it, on
   * `ctl.members`). A receiver whose view is at an epoch in [from, epoch) applies it; one behind
   * `from` missed a change and asks for the whole view.
   */
  'members-delta': Obj({ from: Int(), epoch: Int(), generation: Int(), members: Members }),
  /** Asks the supervisor for the membership view; the reply is `members`. */
  'members-get': Obj({}),
  /** A request to a partition endpoint; `body` is the caller's payload. */
  req: Obj({ body: Type.Optional(Type.Unknown()) }),
  /**
   * One chunk of a collective between partitions (on `coll.<to>.<from>`; the sender is the
   * subject's). `g` generation, `s` sequence of the call in that generation, `a` the sender's
   * attempt, `op` the collective, `tag` its phase, chunk `c` of `n` at byte `o` of a value of `len`
   * bytes, `dt` the typed-array kind (absent: msgpack), `d` the raw bytes.
   */
  coll: Obj({
    g: Int(),
    s: Int(),
    a: Int(),
    op: Name,
    tag: Type.Integer({ minimum: 0, maximum: 255 }),
    c: Int(),
    n: Int(1),
    o: Int(),
    len: Int(),
    dt: Type.Optional(Name),
    d: Type.Uint8Array({ maxByteLength: 8 * 1024 * 1024 }),
  }),
  /**
   * Flow control of collectives over NATS (on `coll.<to>.<from>`): partition `from` has received
   * `bytes` bytes of collective messages from `to` in generation `g`. A sender keeps a bounded
   * window of unacknowledged bytes per peer, so nats-server never holds more for a slow receiver.
   */
  'coll-ack': Obj({ g: Int(), bytes: Int() }),
  /**
   * A request (on `coll.<to>.<from>`, so the subject proves the asker) for a one-time ticket to
   * open a direct collective socket to `to`; `g` and `a` are the asker's generation and attempt.
   */
  'coll-ticket-get': Obj({ g: Int(), a: Int() }),
  /** The answer to `coll-ticket-get`: a one-time ticket bound to the asker, its attempt and the generation, or why not. */
  'coll-ticket': Obj({ ticket: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })), reason: Type.Optional(Str()) }),
  /** An endpoint's reply: a body, or an error. */
  res: Type.Union([Obj({ ok: Type.Literal(true), body: Type.Optional(Type.Unknown()) }), Obj({ ok: Type.Literal(false), error: WireErrorSchema })]),

  // --- Spark application orders: driver → runner (`sps.<app>.spark.<op>`) ---
  /** Run a cluster's job; everything else the job needs is in the runner's private job file `job`. */
  submit: Obj({ clusterId: Name, job: Name }),
  /** An operation on a cached result dataset. */
  dataset: Obj({
    id: Name,
    op: Type.Union([Type.Literal('count'), Type.Literal('collect'), Type.Literal('save'), Type.Literal('unpersist')]),
    path: Type.Optional(Str()),
    format: Type.Optional(Name),
    mode: Type.Optional(
      Type.Union([Type.Literal('error'), Type.Literal('errorifexists'), Type.Literal('overwrite'), Type.Literal('append'), Type.Literal('ignore')]),
    ),
  }),
  /** Run a Spark SQL statement and return up to `limit` rows. */
  sql: Obj({ statement: Str(1 << 20), limit: Int(1) }),
  status: Obj({}),
  close: Obj({}),

  // --- runner → driver replies (on the request's inbox) ---
  ready: Obj({ master: Str(), sparkVersion: Str(), applicationId: Str(), slots: Int(), pid: Int() }),
  /** A job was started; `rowFormat` says how its rows reach the workers, `note` why (e.g. a JSON fallback). */
  submitted: Obj({
    group: Str(),
    slots: Int(),
    rowFormat: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('arrow')])),
    note: Type.Optional(Str()),
  }),
  error: Obj({ code: Str(128), error: Str(65536), available: Type.Optional(Int()), needed: Type.Optional(Int()) }),
  count: Obj({ count: Int() }),
  records: Obj({ records: Type.Array(Type.Unknown()) }),
  saved: Obj({ path: Str(), format: Str() }),
  unpersisted: Obj({}),
  rows: Obj({ rows: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
  'status-reply': Obj({ activeJobs: Type.Array(Int()), jobs: Type.Array(Str()), datasets: Type.Array(Str()), slots: Int() }),
  closing: Obj({}),

  // --- job events: runner → driver on the run's bus (`sps.<cluster>.spark.<event>`) ---
  job_started: Obj({ group: Str() }),
  /** One chunk of a partition's result records, in order (`seq` from 0; `last` on the final one). */
  result: Obj({ partition: Int(), attempt: Type.Integer({ minimum: -1 }), seq: Int(), last: Type.Boolean(), records: Type.Array(Type.Unknown()) }),
  /**
   * Progress of one stage of the run's job, sent when its task counts change (the runner polls
   * Spark's status tracker): `attempt` is the stage's attempt, `tasks` its number of tasks.
   */
  stage: Obj({ stage: Int(), attempt: Int(), name: Str(1024), tasks: Int(), active: Int(), completed: Int(), failed: Int() }),
  job_finished: Obj({ partitions: Int(), records: Int(), dataset: Type.Union([Name, Type.Null()]) }),
  job_failed: Obj({ error: Str(65536), cancelled: Type.Boolean(), partition: Type.Optional(Int()), failures: Type.Optional(Int()) }),
  /** The driver asks the runner to cancel the run's job (request; the reply is `cancelled`). */
  cancel: Obj({}),
  cancelled: Obj({ running: Type.Boolean() }),
} as const satisfies Record<string, TSchema>;

/** A message type of the protocol. */
export type MessageType = keyof typeof MESSAGE_SCHEMAS;

/** The fields of a message of type `T`. */
export type MessageOf<T extends MessageType> = Static<(typeof MESSAGE_SCHEMAS)[T]>;

/** The whole protocol as one JSON Schema document (what `protocol.schema.json` holds). */
export function protocolJsonSchema(version: number): Record<string, unknown> {
  const definitions: Record<string, unknown> = {};
  for (const [t, schema] of Object.entries(MESSAGE_SCHEMAS)) definitions[t] = JSON.parse(JSON.stringify(schema));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'spark-partition-server wire protocol',
    description:
      'Every message is a msgpack map { v, t, ...fields }: v is the protocol version, t the message type, and the fields follow definitions[t]. Generated from src/protocol/schema.ts; do not edit.',
    version,
    framing: FRAMING,
    definitions,
  };
}
