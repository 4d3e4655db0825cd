import { headers as natsHeaders, type Msg, type MsgHdrs, type Subscription } from '@nats-io/nats-core';
import { ServiceErrorCodeHeader, ServiceErrorHeader, type Service, type ServiceMsg } from '@nats-io/services';
import { performance } from 'node:perf_hooks';
import { toWireError, type Member, type WireError } from '../protocol/types.js';
import type { EndpointHandler, PartitionContext } from './context.js';
import { unknownEndpoint, type NatsConnection } from '../transport/bus.js';
import { microServices } from '../transport/services.js';
import { decodeRequest, encodeReply } from '../protocol/messages.js';
import { decodeJsonRequest, encodeJsonReply, jsonReplyHeaders, wantsJson } from '../protocol/json-mode.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { toWireValue } from '../protocol/wire-values.js';
import type { Subjects } from '../protocol/subjects.js';
import type { InFlight } from '../transport/in-flight.js';
import type { RequestRecorder } from './request-recorder.js';
import { shareEndpointStats } from './micro-stats.js';

/** What {@link serveEndpoints} reports to, and counts in, its host. */
export interface EndpointHooks {
  /** A request that did not decode (it gets an error reply). */
  onMalformed(): void;
  /**
   * A one-way message (no reply subject) whose handling failed: it did not decode, its endpoint is
   * unknown, the handler threw, or the partition was not serving. Nobody waits for a reply, so the
   * host counts and logs it (at warn) instead.
   */
  onOneWayFailed(endpoint: string, error: WireError): void;
  /** Where handlers still running are counted, so draining can wait for them. */
  inFlight: InFlight;
  /** Where answered requests are recorded (name `nats <endpoint>`), once each: `$SRV.STATS` and the dashboard read it. */
  recorder: RequestRecorder;
}

/** Where one partition attempt serves, as its micro service metadata tells. */
export interface ServedAt {
  subjects: Subjects;
  partition: number;
  attempt: number;
  host: string;
  port: number | null;
}

/** A partition's endpoints while they are served. */
export interface ServedEndpoints {
  /** The micro service this attempt registered (its `info()` and `stats()` are what `$SRV` answers). */
  readonly service: Service;
  /** A new membership view: once it names a newer attempt of this partition, the stable subjects are left to it. */
  view(members: readonly Member[]): void;
  /** Stops taking requests (stable subjects first, then the service); what was delivered is still answered. */
  stop(): Promise<void>;
}

/** How long a stable request waits for the attempt replacing this one to serve, before `SPS_NOT_SERVING`. */
const SWITCH_WAIT_MS = 10_000;
/** Stable requests held at most while waiting for the replacing attempt; more are refused at once. */
const MAX_HELD = 1024;

/** The `Nats-Service-Error-Code` a micro client sees for an error reply. */
function serviceErrorCode(code: string): number {
  if (code === 'SPS_MALFORMED_MESSAGE') return 400;
  if (code === 'SPS_UNKNOWN_ENDPOINT') return 404;
  if (code === 'SPS_NOT_SERVING') return 503;
  return 500;
}

/** Replies unless the connection is gone (a late async reply after close): then nobody is waiting. */
function respond(msg: Msg | ServiceMsg, data: Uint8Array | string, headers?: MsgHdrs): void {
  try {
    msg.respond(data, headers ? { headers } : undefined);
  } catch {
    // The connection closed under a late handler; the requester has already timed out.
  }
}

/**
 * Answers one request in the content mode it asked for: msgpack envelope by default, JSON with
 * `Content-Type: application/json`. Error replies also carry the micro error headers, so NATS
 * tooling sees them as errors. A one-way message (published without a reply subject) gets no
 * reply: its value is dropped, its error goes to `oneWayFailed`. `onReplied` records the answer.
 */
class Replier {
  readonly json: boolean;
  constructor(
    private readonly msg: Msg | ServiceMsg,
    /** The endpoint, as an encoding error names it. */
    private readonly name: string,
    /** Where the error of a one-way message goes (there is nobody to reply to). */
    private readonly oneWayFailed: (e: WireError) => void,
    /** Called once the reply is sent, with its error if it was one (the request's one record). */
    private readonly onReplied?: (error: WireError | undefined) => void,
  ) {
    this.json = wantsJson(msg.headers);
  }

  fail(error: WireError): void {
    if (!this.msg.reply) {
      this.oneWayFailed(error);
      this.onReplied?.(error);
      return;
    }
    const errHeaders = this.json ? jsonReplyHeaders() : natsHeaders();
    errHeaders.set(ServiceErrorCodeHeader, String(serviceErrorCode(error.code)));
    errHeaders.set(ServiceErrorHeader, `${error.code}: ${error.message}`.replace(/[\r\n]+/g, ' ').slice(0, 1024));
    respond(this.msg, this.json ? encodeJsonReply({ ok: false, error }) : encodeReply({ ok: false, error }), errHeaders);
    this.onReplied?.(error);
  }

  /**
   * Encodes a handler's value by the one mapping of values (wire-values.ts); a value that cannot
   * travel (a function, a symbol, a cycle, a bigint beyond 64 bits) becomes an `SPS_ENCODE` error
   * reply naming the endpoint and where in the value, instead of a throw, so a bad return value
   * costs one request, not the partition.
   */
  ok(body: unknown): void {
    if (!this.msg.reply) {
      // One-way: the handler ran for its effect; its value has nowhere to go.
      this.onReplied?.(undefined);
      return;
    }
    let data: Uint8Array | string;
    try {
      const value = toWireValue(body, 'reply', this.json ? 'json' : 'msgpack');
      data = this.json ? encodeJsonReply({ ok: true, body: value }) : encodeReply({ ok: true, body: value });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return this.fail({ code: 'SPS_ENCODE', message: `reply cannot be encoded: ${why}` });
    }
    respond(this.msg, data, this.json ? jsonReplyHeaders() : undefined);
    this.onReplied?.(undefined);
  }
}

/**
 * Serves a partition attempt's endpoints as one instance of the run's NATS micro service
 * (`subjects.service`): `$SRV.PING/INFO/STATS` answered, metadata with partition, attempt, host
 * and port, one service endpoint per user endpoint on its attempt subject. Requests on either
 * subject of an endpoint are recorded once, when answered, in `hooks.recorder`, which that service
 * endpoint's stats read (micro-stats.ts), so they are the real ones, async handlers' time and error
 * replies included. A request that does not decode gets an error reply (and is counted), a
 * handler's throw an error reply with the handler's code. Async handlers are counted in
 * `hooks.inFlight`.
 *
 * The stable subjects (`subjects.stable(partition, name)`) are served by a queue subscription of
 * all attempts of the partition, so one of them gets each request. An attempt that knows it was
 * replaced never answers one itself: while the newer attempt does not serve yet it holds what it
 * gets (at most `MAX_HELD`, for `SWITCH_WAIT_MS`, then `SPS_NOT_SERVING`); once that one serves it
 * passes everything on to its attempt subject and leaves the queue.
 */
export async function serveEndpoints(
  nc: NatsConnection,
  at: ServedAt,
  handlers: Record<string, EndpointHandler>,
  ctx: PartitionContext,
  hooks: EndpointHooks,
): Promise<ServedEndpoints> {
  const { subjects, partition, attempt } = at;
  const service = await microServices(nc).add({
    name: subjects.service,
    version: `${PROTOCOL_VERSION}.0.0`,
    description: `spark-partition-server cluster run; one instance per partition attempt`,
    // No queue group: each attempt's subjects are its own.
    queue: '',
    metadata: { partition: String(partition), attempt: String(attempt), host: at.host, port: at.port === null ? '' : String(at.port) },
  });
  const { recorder } = hooks;
  // One record per endpoint, looked up by name: no key is built per request.
  const records = new Map(Object.keys(handlers).map((n) => [n, recorder.endpoint(`nats ${n}`)]));

  /** A replier for one message to `name`; a one-way message's failure goes to the host. */
  const replier = (msg: Msg | ServiceMsg, name: string, onReplied?: (error: WireError | undefined) => void): Replier =>
    new Replier(msg, name, (e) => hooks.onOneWayFailed(name, e), onReplied);

  /**
   * Answers one request to `name`, on either of its subjects, and records it once answered; a
   * one-way message runs the handler the same way, with no reply.
   */
  const answer = (name: string, handler: EndpointHandler, msg: Msg | ServiceMsg): void => {
    const rec = records.get(name)!;
    const start = performance.now();
    const r = replier(msg, name, (e) => recorder.record(rec, start, e && `[${e.code}] ${e.message}`));
    let payload: unknown;
    try {
      payload = r.json ? decodeJsonRequest(msg.subject, msg.data) : decodeRequest(msg.subject, msg.data);
    } catch (e) {
      hooks.onMalformed();
      return r.fail(toWireError(e));
    }
    let body: unknown;
    try {
      body = handler(payload, ctx);
    } catch (e) {
      return r.fail(toWireError(e));
    }
    // Synchronous handlers reply at once; only real promises cost a hop (and are counted).
    if (!(body instanceof Promise)) return r.ok(body);
    void hooks.inFlight.track(
      `endpoint "${name}"`,
      body.then(
        (b) => r.ok(b),
        (e) => r.fail(toWireError(e)),
      ),
    );
  };

  for (const [name, handler] of Object.entries(handlers)) {
    service.addEndpoint(name, {
      subject: subjects.endpoint(partition, attempt, name),
      metadata: { stable: subjects.stable(partition, name) },
      handler: (err, msg) => {
        if (!err) answer(name, handler, msg);
      },
    });
    shareEndpointStats(service, name, records.get(name)!);
  }

  let newer: Member | undefined;
  // Stable requests that came while the attempt replacing this one did not serve yet: they wait
  // for it (bounded in number and time), so a client never sees the switch.
  const held = new Map<Msg, ReturnType<typeof setTimeout>>();
  const notServing = (msg: Msg, name: string, current: { attempt: number; state: string }): void =>
    replier(msg, name).fail({
      code: 'SPS_NOT_SERVING',
      message: `partition ${partition}: attempt ${current.attempt} replaced attempt ${attempt} and is ${current.state}`,
    });
  const nameOf = (msg: Msg): string => msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
  // Replaced: the current attempt answers (the server lets it reply to what it was sent).
  const passOn = (msg: Msg, to: number): void =>
    nc.publish(subjects.endpoint(partition, to, nameOf(msg)), msg.data, { reply: msg.reply, headers: msg.headers });
  const hold = (msg: Msg, name: string): void => {
    if (held.size >= MAX_HELD) return notServing(msg, name, newer!);
    const timer = setTimeout(() => {
      held.delete(msg);
      notServing(msg, name, newer!);
    }, SWITCH_WAIT_MS);
    timer.unref();
    held.set(msg, timer);
  };
  const release = (answer: (msg: Msg) => void): void => {
    for (const [msg, timer] of held) {
      clearTimeout(timer);
      answer(msg);
    }
    held.clear();
  };
  let stable: Subscription | undefined = nc.subscribe(subjects.stable(partition, '*'), {
    queue: `p${partition}`,
    callback: (err, msg) => {
      if (err) return;
      const name = nameOf(msg);
      const unknown = unknownEndpoint({ partition, endpoints: Object.keys(handlers) }, name);
      if (unknown) return replier(msg, name).fail(unknown);
      if (newer) {
        if (newer.state === 'serving') passOn(msg, newer.attempt);
        else hold(msg, name);
        return;
      }
      // Answered here, not passed to our own attempt subject: the server does not let a
      // connection reply to a request it sent itself.
      answer(name, handlers[name]!, msg);
    },
  });
  await nc.flush();

  return {
    service,
    view(members) {
      const mine = members.find((m) => m.partition === partition);
      if (!mine || mine.attempt <= attempt) return;
      newer = mine;
      // The newer attempt joins the stable subject's queue before it reports serving: until then
      // this one stays in the queue (leaving earlier would leave the subject without responders).
      if (mine.state !== 'serving') return;
      release((msg) => passOn(msg, mine.attempt));
      // Drained, not unsubscribed: a request the server sent before it saw our unsubscribe would
      // otherwise be dropped unanswered; drained, it still reaches the callback, which passes it on.
      const leaving = stable;
      stable = undefined;
      void leaving?.drain().catch(() => {});
    },
    async stop() {
      release((msg) => notServing(msg, nameOf(msg), newer!));
      try {
        // Delivers what the subscriptions already hold, then closes them; async handlers run on.
        await stable?.drain();
        stable = undefined;
        await service.stop();
      } catch {
        // The connection is closed: no reply could go out anyway.
      }
    },
  };
}
