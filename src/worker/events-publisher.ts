/**
 * `ctx.publish`: a partition stores an event in the run's events stream (option `events`) and
 * waits for the stream's acknowledgement. The subject is prefixed with the partition's own
 * number, which its permissions enforce, so a reader always knows who sent an event.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import type { JetStreamClient } from '@nats-io/jetstream';
import { SparkPartitionServerError } from '../errors.js';
import type { Subjects } from '../protocol/subjects.js';
import { checkEventSubject, eventsSubject } from '../protocol/updates.js';

/** Options of `ctx.publish`. */
export interface PublishOptions {
  /**
   * Stored once per id within the stream's duplicate window (10 minutes): give one derived from
   * what caused the event (e.g. `update.seq`), so a retried attempt replaying updates does not
   * publish its events twice.
   */
  msgId?: string;
  /** NATS headers to store with the event. */
  headers?: Record<string, string>;
}

/** The stream's acknowledgement of `ctx.publish`. */
export interface PublishAck {
  /** The event's sequence in the run's events stream. */
  seq: number;
  /** True when an event with the same `msgId` was already stored (this one was not). */
  duplicate: boolean;
}

/** Makes `ctx.publish` for partition `partition`; `stream` is unset in a run without events. */
export function eventPublisher(
  nc: NatsConnection,
  subjects: Subjects,
  partition: number,
  stream: string | undefined,
): (subject: string, data: Uint8Array | string, options?: PublishOptions) => Promise<PublishAck> {
  let js: Promise<JetStreamClient> | undefined;
  return async (subject, data, options = {}) => {
    if (stream === undefined) throw new SparkPartitionServerError('SPS_NO_EVENTS', 'ctx.publish needs the cluster option events: true');
    checkEventSubject(subject);
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new SparkPartitionServerError('SPS_ENCODE', `ctx.publish("${subject}"): data must be a string or a Uint8Array (encode values yourself, e.g. JSON)`);
    }
    // Loaded on first use: a server that never publishes never loads the JetStream client.
    js ??= import('@nats-io/jetstream').then(({ jetstream }) => jetstream(nc));
    const h = options.headers ? natsHeaders() : undefined;
    for (const [k, v] of Object.entries(options.headers ?? {})) h!.set(k, v);
    const ack = await (
      await js
    ).publish(eventsSubject(subjects, partition, subject), data, {
      ...(options.msgId !== undefined ? { msgID: options.msgId } : {}),
      ...(h ? { headers: h } : {}),
      expect: { streamName: stream },
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  };
}
