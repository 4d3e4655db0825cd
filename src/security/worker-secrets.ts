import { Socket } from 'node:net';
import { once } from 'node:events';
import type { MessagePort } from 'node:worker_threads';
import { InvalidOptionError } from '../errors.js';
import { parseBusAccess, type BusAccess } from './bus-access.js';
import type { AttemptSecrets } from './attempt-secrets.js';

/**
 * The secrets of one worker travel on an inherited pipe, never in its environment: the launcher
 * writes them as one JSON object on the worker's fd `SPS_SECRET_FD` and closes its end; the worker
 * reads that once, at start, and closes the fd. So neither `/proc/<pid>/environ` nor any process
 * the worker spawns holds them. The embedded launcher and the Spark runner write the same object.
 * A partition run as a thread (option `isolation: 'thread'`) gets the same object as the first
 * message on its own MessagePort ({@link receiveWorkerSecrets}).
 */

/** What one partition attempt is handed: its bus access and its attempt's own secrets. */
export interface WorkerSecrets extends AttemptSecrets {
  bus: BusAccess;
}

/** The most a launcher may write on the secret pipe (bus access with a TLS CA and client key is a few KiB). */
export const MAX_SECRET_BYTES = 256 * 1024;

/** The JSON a launcher writes on the secret pipe. */
export function serializeWorkerSecrets(s: WorkerSecrets): string {
  return JSON.stringify({ bus: s.bus, controlToken: s.controlToken, proof: s.proof });
}

/** A JSON object's fields; `what` names the source in errors, never the content. */
function jsonObject<T>(json: string, what: string): Partial<Record<keyof T, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new InvalidOptionError(what, 'is not JSON');
  }
  if (!v || typeof v !== 'object') throw new InvalidOptionError(what, 'is not a JSON object');
  return v as Partial<Record<keyof T, unknown>>;
}

/** Reads the secrets from their JSON; `what` names the source in errors, never the content. */
export function parseWorkerSecrets(json: string, what: string): WorkerSecrets {
  const o = jsonObject<WorkerSecrets>(json, what);
  for (const field of ['controlToken', 'proof'] as const) {
    if (typeof o[field] !== 'string' || !/^[0-9a-f]{64}$/.test(o[field])) throw new InvalidOptionError(what, `has no valid "${field}"`);
  }
  if (!o.bus || typeof o.bus !== 'object') throw new InvalidOptionError(what, 'has no "bus"');
  const bus = parseBusAccess(JSON.stringify(o.bus), `${what} "bus"`);
  return { bus, controlToken: o.controlToken as string, proof: o.proof as string };
}

/**
 * Reads the secrets from inherited fd `fd` until its writer closes it, at most
 * {@link MAX_SECRET_BYTES}, then closes the fd.
 * @throws InvalidOptionError naming `what` when the fd cannot be read, holds too much, or no valid secrets.
 */
export async function readWorkerSecrets(fd: number, what: string): Promise<WorkerSecrets> {
  return parseWorkerSecrets(await readPipeOnce(fd, what), what);
}

/** Reads inherited fd `fd` until its writer closes it, at most {@link MAX_SECRET_BYTES}, then closes the fd. */
async function readPipeOnce(fd: number, what: string): Promise<string> {
  let pipe: Socket;
  try {
    pipe = new Socket({ fd, readable: true, writable: false });
  } catch (err) {
    throw new InvalidOptionError(what, `fd ${fd} is not a readable pipe (${(err as Error).message})`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const text = await new Promise<string>((resolve, reject) => {
    pipe.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_SECRET_BYTES) {
        pipe.destroy();
        reject(new InvalidOptionError(what, `holds more than ${MAX_SECRET_BYTES} bytes`));
      } else chunks.push(chunk);
    });
    pipe.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    pipe.once('error', (err) => reject(new InvalidOptionError(what, `fd ${fd} could not be read (${err.message})`)));
  }).finally(() => pipe.destroy());
  return text;
}

/**
 * What a spare worker (option `spareWorker`) receives on its secret pipe when it becomes an
 * attempt: which partition and attempt it is, and that attempt's {@link WorkerSecrets}. Until then
 * it holds neither.
 */
export interface SpareAssignment {
  partition: number;
  attempt: number;
  secrets: WorkerSecrets;
}

/** The JSON a launcher writes on a spare's secret pipe to make it `attempt` of `partition`; `secrets` as {@link serializeWorkerSecrets} made them. */
export function serializeSpareAssignment(partition: number, attempt: number, secrets: string): string {
  return `{"partition":${partition},"attempt":${attempt},"secrets":${secrets}}`;
}

/**
 * Waits on a spare's secret pipe for its assignment; resolves with `undefined` when the launcher
 * closed the pipe without one (the spare is not needed: it exits).
 * @throws InvalidOptionError naming `what` when the pipe cannot be read or holds no valid assignment.
 */
export async function readSpareAssignment(fd: number, what: string): Promise<SpareAssignment | undefined> {
  const text = await readPipeOnce(fd, what);
  if (text === '') return undefined;
  const o = jsonObject<SpareAssignment>(text, what);
  for (const field of ['partition', 'attempt'] as const) {
    if (!Number.isSafeInteger(o[field]) || (o[field] as number) < 0) throw new InvalidOptionError(what, `has no valid "${field}"`);
  }
  return { partition: o.partition as number, attempt: o.attempt as number, secrets: parseWorkerSecrets(JSON.stringify(o.secrets), `${what} "secrets"`) };
}

/**
 * Reads the secrets of a partition run as a thread: the first message on `port`, the same JSON a
 * launcher writes on the secret pipe, at most {@link MAX_SECRET_BYTES}.
 * @throws InvalidOptionError naming `what` when the message is not that JSON.
 */
export async function receiveWorkerSecrets(port: MessagePort, what: string): Promise<WorkerSecrets> {
  const [message] = (await once(port, 'message')) as unknown[];
  if (typeof message !== 'string') throw new InvalidOptionError(what, 'is not a string');
  if (Buffer.byteLength(message) > MAX_SECRET_BYTES) throw new InvalidOptionError(what, `holds more than ${MAX_SECRET_BYTES} bytes`);
  return parseWorkerSecrets(message, what);
}
