/**
 * Live updates: names and subjects shared by the driver (which makes the stream), the workers
 * (each consumes its own partition of it) and the permissions. A publisher sends an update on the
 * run's updates subject, e.g. `orders.<key>`; the stream's subject transform stores it as
 * `sps.<id>.upd.<partition>.<key>`, with nats-server's `partition(n, 1)` — the same function as
 * `partitionOfKey` — so the server itself decides which partition an update belongs to.
 */
import { InvalidOptionError, SparkPartitionServerError } from '../errors.js';
import type { Subjects } from './subjects.js';

/** What a worker is told about the run's updates (environment `SPS_UPDATES`, JSON; no secret). */
export interface UpdatesPlan {
  /** The JetStream stream holding the run's updates. */
  stream: string;
  /** The first stream sequence of the run: every attempt replays its partition from here. */
  startSeq: number;
}

/** The stream of cluster run `clusterId` (stream names take no `.`, `*`, `>` or spaces; ids are tokens). */
export function updatesStream(clusterId: string): string {
  return `SPS_${clusterId}_UPD`;
}

/** The name of partition `p`'s consumer: one per partition, so permissions can name it. */
export function updatesConsumer(partition: number): string {
  return `p${partition}`;
}

/** Where the stream stores partition `p`'s updates (`*` for every partition), one token per key. */
export function updatesFilter(subjects: Subjects, partition: number | '*'): string {
  return `${subjects.prefix}.upd.${partition}.*`;
}

/** The stream's subject transform: the updates subject to the owning partition's stored subject. */
export function updatesTransform(subjects: Subjects, subject: string, partitions: number): { src: string; dest: string } {
  // The arguments number wildcards, not tokens: the subject's one `*` is wildcard 1.
  return { src: subject, dest: `${subjects.prefix}.upd.{{partition(${partitions},1)}}.{{wildcard(1)}}` };
}

/** Where partition `p` sends an update its handler could not apply (with headers saying why). */
export function deadLetterSubject(subjects: Subjects, partition: number | '*'): string {
  return `${subjects.prefix}.upd.dead.${partition}`;
}

/**
 * Checks option `updates`: a subject with exactly one `*` token (the key) and no `>`, outside the
 * library's own `sps.` and the server's `$` subjects.
 */
export function checkUpdatesSubject(subject: unknown): string {
  const bad = (why: string): never => {
    throw new InvalidOptionError('updates', `${why}, got ${JSON.stringify(subject)} (e.g. "orders.*": an update for key k is published on orders.k)`);
  };
  if (typeof subject !== 'string') return bad('must be a subject with one "*" for the key');
  const tokens = subject.split('.');
  if (tokens.some((t) => t === '' || /\s/.test(t))) bad('must be a NATS subject: tokens separated by single dots, without spaces');
  if (tokens.includes('>')) bad('may not hold ">": one "*" stands for the key');
  if (tokens.filter((t) => t === '*').length !== 1) bad('must hold exactly one "*" token, for the key');
  if (tokens.some((t) => t !== '*' && /[*>]/.test(t))) bad('"*" must be a whole token');
  if (tokens[0] === 'sps' || subject.startsWith('$') || subject.startsWith('_INBOX'))
    bad('may not be under sps., $ or _INBOX (the library and the server use those)');
  return subject;
}

/** The stream of cluster run `clusterId`'s events: what partitions publish with `ctx.publish` (option `events`). */
export function eventsStream(clusterId: string): string {
  return `SPS_${clusterId}_EVT`;
}

/** Where partition `p` publishes event `subject` (`>`: all of p's), so the subject names who sent it. */
export function eventsSubject(subjects: Subjects, partition: number | '*', subject = '>'): string {
  return `${subjects.prefix}.evt.${partition}.${subject}`;
}

/** Checks the subject of `ctx.publish`: one or more tokens, no wildcards, no spaces. */
export function checkEventSubject(subject: unknown): string {
  const ok = typeof subject === 'string' && subject.length > 0 && subject.length <= 256 && subject.split('.').every((t) => t !== '' && !/[\s*>]/.test(t));
  if (!ok)
    throw new SparkPartitionServerError(
      'SPS_BAD_SUBJECT',
      `ctx.publish: the subject must be tokens separated by single dots, without "*", ">" or spaces, at most 256 characters; got ${JSON.stringify(subject)}`,
    );
  return subject;
}

/** Parses `SPS_UPDATES`. */
export function parseUpdatesPlan(text: string): UpdatesPlan {
  const v = JSON.parse(text) as Partial<UpdatesPlan>;
  if (typeof v.stream !== 'string' || !Number.isSafeInteger(v.startSeq) || (v.startSeq as number) < 1) {
    throw new Error(`not an updates plan: ${text}`);
  }
  return { stream: v.stream, startSeq: v.startSeq as number };
}
