/**
 * The driver's side of live updates (option `updates`) and events (option `events`): it makes the
 * run's streams before any worker starts, so every attempt replays its partition from the same
 * first sequence, and reads the dead letters partitions sent back.
 */
import {
  jetstreamManager,
  StorageType,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  type MsgRequest,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { errors } from '@nats-io/nats-core';
import type { NatsConnection } from '../transport/bus.js';
import type { Subjects } from '../protocol/subjects.js';
import { deadLetterSubject, eventsStream, eventsSubject, updatesStream, updatesTransform, type UpdatesPlan } from '../protocol/updates.js';
import { InvalidOptionError, SparkPartitionServerError } from '../errors.js';

/** Bounds of the run's stream: a publisher cannot fill the store beyond them (old updates are never dropped). */
export const UPDATES_STREAM_LIMITS = { maxBytes: 4 * 1024 ** 3, maxMsgSize: 1024 ** 2, duplicateWindowNs: 24 * 3600 * 1e9 };

/** An update a partition could not apply, as its dead letter says. */
export interface DeadLetter {
  partition: number;
  /** The stream sequence of the update. */
  seq: number;
  key: string;
  /** The error code and message of the failure (decoding or the handler). */
  code: string;
  error: string;
  /** The update's bytes as published. */
  data: Uint8Array;
}

/** The bus's JetStream, or a clear error naming the option that needs it. */
async function streamsOf(nc: NatsConnection, option: 'updates' | 'events'): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (err) {
    throw new SparkPartitionServerError('SPS_NO_JETSTREAM', `option ${option} needs JetStream on the bus, which does not answer: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Makes the updates stream of run `clusterId`; resolves with what workers are told. */
export async function createUpdatesStream(
  nc: NatsConnection,
  clusterId: string,
  subjects: Subjects,
  subject: string,
  partitions: number,
): Promise<UpdatesPlan> {
  const jsm = await streamsOf(nc, 'updates');
  const stream = updatesStream(clusterId);
  const info = await refusedAs(
    'updates',
    addReplicated(nc, jsm, {
      name: stream,
      // Dead letters are kept beside the updates: none is lost, and the driver reads them back.
      subjects: [subject, deadLetterSubject(subjects, '*')],
      subject_transform: updatesTransform(subjects, subject, partitions),
      storage: StorageType.File,
      max_bytes: UPDATES_STREAM_LIMITS.maxBytes,
      max_msg_size: UPDATES_STREAM_LIMITS.maxMsgSize,
      // A full stream refuses new updates (the publisher sees the error) rather than forgetting old ones a retry replays.
      discard: DiscardPolicy.New,
      // A dead letter is stored once even when a retry replays its update much later (the default window is 2 minutes).
      duplicate_window: UPDATES_STREAM_LIMITS.duplicateWindowNs,
    }),
  );
  return { stream, startSeq: info.state.last_seq + 1 };
}

/** Bounds of the events stream: the oldest events go first when it is full (readers keep up or lose history). */
export const EVENTS_STREAM_LIMITS = { maxBytes: 1024 ** 3, maxMsgSize: 1024 ** 2, maxConsumers: 256, duplicateWindowNs: 10 * 60 * 1e9 };

/** Makes the events stream of run `clusterId` (what partitions publish with `ctx.publish`). */
export async function createEventsStream(nc: NatsConnection, clusterId: string, subjects: Subjects): Promise<void> {
  const jsm = await streamsOf(nc, 'events');
  await refusedAs(
    'events',
    addReplicated(nc, jsm, {
      name: eventsStream(clusterId),
      subjects: [eventsSubject(subjects, '*')],
      storage: StorageType.File,
      max_bytes: EVENTS_STREAM_LIMITS.maxBytes,
      max_msg_size: EVENTS_STREAM_LIMITS.maxMsgSize,
      max_consumers: EVENTS_STREAM_LIMITS.maxConsumers,
      // A replayed update that publishes again with the same msgId is stored once within this window.
      duplicate_window: EVENTS_STREAM_LIMITS.duplicateWindowNs,
      discard: DiscardPolicy.Old,
    }),
  );
}

/** Replicas of a run's stream on a clustered bus: a majority survives the loss of one node. */
export const CLUSTER_STREAM_REPLICAS = 3;

/**
 * Adds a stream, replicated on `CLUSTER_STREAM_REPLICAS` JetStream nodes when the bus is a cluster
 * that has them, else on one: a cluster with fewer JetStream nodes refuses the replicas, and the
 * stream is made unreplicated instead (as on a single server).
 */
async function addReplicated(
  nc: NatsConnection,
  jsm: JetStreamManager,
  config: Omit<Partial<StreamConfig>, 'num_replicas'> & { name: string },
): Promise<StreamInfo> {
  if (nc.info?.cluster) {
    try {
      return await jsm.streams.add({ ...config, num_replicas: CLUSTER_STREAM_REPLICAS });
    } catch (err) {
      // 10005: insufficient resources (too few JetStream nodes); 10074: replicas in non-clustered mode.
      if (!(err instanceof JetStreamApiError && [10005, 10074].includes(err.code))) throw err;
    }
  }
  return jsm.streams.add({ ...config, num_replicas: 1 });
}

/** A stream the server refused (on a server you run: e.g. another stream already holds the subject), as an error naming the option. */
async function refusedAs<T>(option: 'updates' | 'events', making: Promise<T>): Promise<T> {
  try {
    return await making;
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    throw new InvalidOptionError(
      option,
      `the NATS server refused the run's stream: ${err.message} (the run's streams reserve ${UPDATES_STREAM_LIMITS.maxBytes / 1024 ** 3} GiB for updates and ${EVENTS_STREAM_LIMITS.maxBytes / 1024 ** 3} GiB for events of its file storage)`,
    );
  }
}

/**
 * Deletes the streams the run made (on a NATS server you run; the private one takes them along when
 * it stops). Only those: with its own identities, the driver may touch no other.
 */
export async function deleteRunStreams(nc: NatsConnection, clusterId: string, made: { updates: boolean; events: boolean }): Promise<void> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const names = [...(made.updates ? [updatesStream(clusterId)] : []), ...(made.events ? [eventsStream(clusterId)] : [])];
  for (const name of names) {
    // After a node of a cluster was lost, the JetStream API may not answer until a new meta leader
    // is elected: a few tries, each bounded by the client's request timeout.
    for (let tries = 1; ; tries++) {
      try {
        await jsm.streams.delete(name);
        break;
      } catch (err) {
        if (err instanceof JetStreamApiError && err.status === 404) break;
        if (!(err instanceof errors.TimeoutError) || tries === DELETE_TRIES) throw err;
      }
    }
  }
}

/** How often the driver asks to delete a stream whose deletion times out. */
const DELETE_TRIES = 4;

/** The dead letters of the run so far, in the order they were sent. */
export async function readDeadLetters(nc: NatsConnection, plan: UpdatesPlan, subjects: Subjects): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const out: DeadLetter[] = [];
  let seq = plan.startSeq;
  for (;;) {
    let m;
    try {
      // The server answers `next_by_subj` (the first match at or after `seq`); the client's type lacks it.
      m = await jsm.streams.getMessage(plan.stream, { seq, next_by_subj: deadLetterSubject(subjects, '*') } as unknown as MsgRequest);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 404) break;
      throw err;
    }
    if (!m) break;
    const h = m.header;
    out.push({
      partition: Number(m.subject.split('.').pop()),
      seq: Number(h.get('Sps-Seq')),
      key: h.get('Sps-Key'),
      code: h.get('Sps-Error-Code'),
      error: h.get('Sps-Error'),
      data: m.data,
    });
    seq = m.seq + 1;
  }
  return out;
}
