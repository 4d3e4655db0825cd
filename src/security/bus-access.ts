import { InvalidOptionError } from '../errors.js';
import { fieldsOf, type UnionKeys } from '../option-fields.js';

/**
 * How a process reaches and logs in to the NATS bus. One value carries everything, so launchers
 * hand it to workers in one secret channel (a pipe the worker reads once, or its own Spark task's input) and
 * never put any of it in argv, a log line, an error message or a message body.
 */

/** Credentials for the bus: an nkey seed, a token, a user and password, or a creds file's text. */
export type BusAuth = { nkeySeed: string } | { token: string } | { user: string; pass: string } | { creds: string };

/** TLS for the bus: the CA that signs the server's certificate (PEM), and a client cert and key for mutual TLS. */
export interface BusTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Everything one process needs to reach the bus as one identity. */
export interface BusAccess {
  /** Server URL(s), comma-separated. */
  url: string;
  auth?: BusAuth;
  tls?: BusTls;
  /** Prefix of this identity's reply inboxes (its permissions allow only this one). */
  inboxPrefix?: string;
  /** How long to keep reconnecting after the server went away before giving up. Default: 30000 ms. */
  reconnectWindowMs?: number;
}

/** Turns bus access into JSON (the Spark runner's own access travels so, in spark-submit's environment). */
export function serializeBusAccess(a: BusAccess): string {
  return JSON.stringify(a);
}

/** Reads bus access from its JSON; `what` names the source in errors, never the content. */
export function parseBusAccess(json: string, what: string): BusAccess {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new InvalidOptionError(what, 'is not JSON');
  }
  const o = v as Partial<BusAccess> | null;
  if (!o || typeof o !== 'object' || typeof o.url !== 'string' || o.url === '') throw new InvalidOptionError(what, 'has no "url"');
  return o as BusAccess;
}

/** Every field of the kinds of {@link BusAuth}. */
export const BUS_AUTH_FIELDS = fieldsOf<Record<UnionKeys<BusAuth>, unknown>>({ nkeySeed: true, token: true, user: true, pass: true, creds: true });
/** The fields of {@link BusTls}. */
export const BUS_TLS_FIELDS = fieldsOf<BusTls>({ ca: true, cert: true, key: true });
