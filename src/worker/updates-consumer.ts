/**
 * A partition's side of live updates: its own consumer of the run's stream, made anew by every
 * attempt from the run's first sequence, so a retried attempt's state is its load plus every
 * update of its keys since the run started — each applied once, in stream order.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import { backoff, delay, headers as natsHeaders, type Delay, type NatsConnection, type Status } from '@nats-io/nats-core';
import { unpack } from '../protocol/codec.js';
import type { Subjects } from '../protocol/subjects.js';
import { deadLetterSubject, updatesConsumer, updatesFilter, type UpdatesPlan } from '../protocol/updates.js';
import { SparkPartitionServerError, type ErrorCode } from '../errors.js';

/** One update as a partition server's `onUpdate` receives it. */
export interface Update<Value = unknown> {
  /** The key: the token the publisher put for the subject's `*` (e.g. `k` of `orders.k`). */
  key: string;
  /** The payload decoded: JSON, or msgpack when the message has header `Content-Type: application/msgpack`; `undefined` when empty. */
  value: Value;
  /** The stream sequence of the update: rises with every update of the run, across partitions. */
  seq: number;
  /** The payload's bytes as published. */
  data: Uint8Array;
}

/** Where a partition stands in the run's updates (`ctx.updates()`). */
export interface UpdatesStatus {
  /** The stream sequence of the last update handled (applied or sent to the dead letters); 0: none yet. */
  lastSeq: number;
  /** Updates applied by this attempt (its replay included). */
  applied: number;
  /** Updates that failed to decode or whose handler threw, each sent to the dead letters. */
  failed: number;
  /** Updates of this partition in the stream not handled yet, as the stream last told. */
  pending: number;
  /**
   * When this attempt first had nothing pending: how many updates it had handled by then (its
   * replay, for a retried attempt) and in how many milliseconds from its start; unset until then.
   */
  caughtUp?: { updates: number; ms: number };
}

/** A partition's running consumer. */
export interface UpdatesConsumer {
  status(): UpdatesStatus;
  /** Stops taking updates; resolves once the one being handled (if any) is done. */
  stop(): Promise<void>;
}

const MSGPACK = 'application/msgpack';
/** Longer than any handler should take: a redelivery would only be skipped (its sequence is below lastSeq). */
const ACK_WAIT_NS = 10 * 60 * 1e9;
/** The most updates handled before one acknowledgement covers them (fewer when the partition catches up). */
const ACK_EVERY = 64;
/** Updates asked of the server at a time (it asks again when a quarter is handled): fewer pull requests per update. */
const PULL = 512;
/**
 * How long one pull waits on the server: a pull held by a node that died is noticed after two
 * missed heartbeats (half of this each) and sent again, to the consumer's new leader.
 */
const PULL_EXPIRES_MS = 5_000;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes an update's payload (JSON, or msgpack by its header); refuses bytes that are not UTF-8 (a JSON update must be text). */
function decodeValue(m: JsMsg): unknown {
  if (m.data.length === 0) return undefined;
  return m.headers?.get('Content-Type') === MSGPACK ? unpack(m.data) : JSON.parse(UTF8.decode(m.data));
}

/**
 * Starts partition `partition`'s consumer of `plan`'s stream and applies each update with
 * `apply`, one at a time; an update that cannot be decoded or applied goes to the partition's
 * dead-letter subject (headers say why) and the next one follows.
 */
export async function consumeUpdates(
  nc: NatsConnection,
  plan: UpdatesPlan,
  subjects: Subjects,
  partition: number,
  apply: (update: Update) => unknown,
  onFailed: (update: { key: string; seq: number }, err: SparkPartitionServerError) => void,
  onLost: (err: SparkPartitionServerError) => void,
): Promise<UpdatesConsumer> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const js = jetstream(nc);
  const name = updatesConsumer(partition);
  const filter = updatesFilter(subjects, partition);
  const lost = (why: Error | undefined): SparkPartitionServerError =>
    new SparkPartitionServerError(
      'SPS_UPDATES_LOST',
      `the run's updates stream ${plan.stream} or partition ${partition}'s consumer ${name} is gone${why ? ` (${why.message})` : ''}: the partition can no longer keep its state current`,
      { cause: why },
    );
  const config = {
    name,
    // Durable: it has as many replicas as the stream (an ephemeral one lives on one node, and dies
    // with it), so on a cluster it moves to a surviving node with its position.
    durable_name: name,
    filter_subject: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    // One acknowledgement covers every update before it: a busy partition acknowledges a run of them at once.
    ack_policy: AckPolicy.All,
    ack_wait: ACK_WAIT_NS,
    // Bounds what this worker holds: the server delivers no more updates unacknowledged.
    max_ack_pending: 2 * PULL,
  };
  const status: UpdatesStatus = { lastSeq: 0, applied: 0, failed: 0, pending: 0 };
  const started = performance.now();
  const noteCaughtUp = (): void => {
    if (status.pending === 0 && !status.caughtUp) status.caughtUp = { updates: status.applied + status.failed, ms: performance.now() - started };
  };
  let stopping = false;
  /** Why the consumer in use is to be made again where the partition stands; unset while it is trusted. */
  let resync: string | undefined;
  /** The wait before opening the consumer again: cut short by stop(). */
  let pause: Delay | undefined;

  /**
   * Makes the partition's consumer anew from stream sequence `from` and starts taking its updates.
   * The partition's own `lastSeq` is its position, not the server's: a server that restarted may
   * remember deliveries that never reached this worker, and acknowledging a later update (they are
   * acknowledged in runs) would then skip them.
   */
  async function open(from: number): Promise<ConsumerMessages> {
    try {
      await jsm.consumers.delete(plan.stream, name);
    } catch (err) {
      // A stream that is gone cannot be replayed: no retry helps.
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) throw lost(err);
      if (!(err instanceof JetStreamApiError && err.status === 404)) throw err;
    }
    const info = await jsm.consumers.add(plan.stream, { ...config, opt_start_seq: from });
    status.pending = info.num_pending;
    noteCaughtUp();
    const consumer = await js.consumers.get(plan.stream, name);
    // The client keeps pulling while the consumer is missing: on a cluster it is missing while its
    // leader is elected again after a node is lost.
    const messages = await consumer.consume({ max_messages: PULL, expires: PULL_EXPIRES_MS });
    void watch(messages);
    return messages;
  }

  /** `open` from where the partition stands, tried again until JetStream answers (it may still be loading its store). */
  async function reopen(): Promise<ConsumerMessages | undefined> {
    const wait = backoff([250, 500, 1000, 2000, 5000]);
    for (let attempt = 0; !stopping && !nc.isClosed(); attempt++) {
      try {
        return await open(Math.max(plan.startSeq, status.lastSeq + 1));
      } catch (err) {
        if (err instanceof SparkPartitionServerError) throw err;
        pause = delay(wait.backoff(attempt));
        await pause;
      }
    }
    return undefined;
  }

  /** Gives up the consumer in use: the apply loop drops what it holds and opens it again where the partition stands. */
  function startOver(why: string): void {
    if (stopping || resync) return;
    resync = why;
    current.stop();
  }

  /**
   * Starts over when the consumer may have lost deliveries (missed heartbeats: a pull held by a
   * node that died) or is missing (deleted, or its stream gone: opening it again tells which).
   */
  async function watch(messages: ConsumerMessages): Promise<void> {
    for await (const n of messages.status()) {
      // A consumer given up says nothing of its replacement (its notifications end with it).
      if (messages !== current) continue;
      if (n.type === 'heartbeats_missed') startOver('heartbeats missed');
      else if (n.type === 'stream_not_found' || n.type === 'consumer_not_found' || n.type === 'consumer_deleted') startOver(n.type);
    }
  }

  // An earlier attempt's consumer remembers what that attempt acknowledged: this attempt replays from the start.
  let current = await open(plan.startSeq);
  const prefix = filter.slice(0, -1);
  // Deliveries under way when the connection dropped may be lost: the consumer starts over where the partition stands.
  // The client's status iterator can be stopped (its type does not say so): a stopped consumer leaves no listener behind.
  const connection = nc.status() as AsyncIterable<Status> & { stop(): void };
  void (async () => {
    for await (const s of connection) if (s.type === 'reconnect') startOver('the connection to NATS came back');
  })();

  const deadLetter = async (m: JsMsg, key: string, err: SparkPartitionServerError): Promise<void> => {
    const h = natsHeaders();
    h.set('Sps-Seq', String(m.seq));
    h.set('Sps-Key', key);
    h.set('Sps-Error-Code', err.code);
    // Header values are one line.
    h.set('Sps-Error', err.message.replace(/[\r\n]+/g, ' ').slice(0, 1024));
    // Deduplicated by the stream: a retried attempt replaying the same update sends no second letter.
    await js.publish(deadLetterSubject(subjects, partition), m.data, { headers: h, msgID: `dead-${m.seq}` });
  };

  const loop = (async () => {
    try {
      for (;;) {
        await applyAll(current);
        if (stopping) return;
        if (!resync) break;
        resync = undefined;
        const next = await reopen();
        if (!next) break;
        current = next;
        // Given up again while it was being opened (the connection dropped once more).
        if (resync) current.stop();
      }
    } catch (err) {
      if (!stopping) onLost(err instanceof SparkPartitionServerError ? err : lost(err as Error));
      return;
    }
    if (stopping) return;
    const why = await current.closed();
    onLost(lost(why instanceof Error ? why : undefined));
  })();

  async function applyAll(messages: ConsumerMessages): Promise<void> {
    let unacked = 0;
    // Deliveries of one consumer are numbered 1, 2, …: a number skipped is a delivery that never arrived.
    let delivered = 0;
    for await (const m of messages) {
      // What is left of a consumer given up is dropped: its replacement delivers it again.
      if (stopping || resync) continue;
      // The delivery's numbers, parsed from its reply subject once.
      const info = m.info;
      if (info.deliverySequence > delivered + 1) {
        startOver(`deliveries ${delivered + 1} to ${info.deliverySequence - 1} of consumer ${name} never arrived`);
        continue;
      }
      delivered = info.deliverySequence;
      const seq = info.streamSequence;
      // A redelivery of what this attempt already handled.
      if (seq > status.lastSeq) {
        const key = m.subject.slice(prefix.length);
        try {
          let value: unknown;
          try {
            value = decodeValue(m);
          } catch (err) {
            throw new SparkPartitionServerError(
              'SPS_UPDATE_DECODE',
              `update ${seq} (key "${key}") is not ${m.headers?.get('Content-Type') === MSGPACK ? 'msgpack' : 'JSON'}: ${(err as Error).message}`,
            );
          }
          try {
            // A handler that returns no promise is not awaited: no extra turn per update.
            const done = apply({ key, value, seq, data: m.data });
            if (done instanceof Promise) await done;
          } catch (err) {
            // A handler's own coded error keeps its code (the application's, not the library's).
            const code = err instanceof SparkPartitionServerError ? (err.code as ErrorCode) : 'SPS_UPDATE_FAILED';
            throw new SparkPartitionServerError(code, `onUpdate threw on update ${seq} (key "${key}"): ${(err as Error)?.message ?? String(err)}`, {
              cause: err,
            });
          }
          status.applied++;
        } catch (err) {
          status.failed++;
          const e = err as SparkPartitionServerError;
          onFailed({ key, seq }, e);
          try {
            await deadLetter(m, key, e);
          } catch (stored) {
            // Not acknowledged: the next attempt replays this update and tries its letter again.
            throw new SparkPartitionServerError(
              'SPS_DEAD_LETTER',
              `update ${seq} (key "${key}") failed ([${e.code}] ${e.message}) and its dead letter could not be stored: ${(stored as Error).message}`,
              { cause: stored },
            );
          }
        }
        status.lastSeq = seq;
      }
      status.pending = info.pending;
      if (info.pending === 0) noteCaughtUp();
      // One acknowledgement covers a run of ACK_EVERY updates; the last update the stream holds for
      // this partition is acknowledged at once, so its lag reads 0. The buffer emptying is no reason
      // to send one: it empties whenever the partition keeps up with deliveries still under way.
      if (++unacked === ACK_EVERY || info.pending === 0) {
        m.ack();
        unacked = 0;
      }
    }
  }

  return {
    status: () => ({ ...status }),
    stop: async () => {
      stopping = true;
      connection.stop();
      pause?.cancel();
      await current.close();
      await loop;
    },
  };
}
