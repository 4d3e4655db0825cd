/**
 * The credentials file: what a client needs to reach one cluster run, as one JSON object. `sps run`
 * and `cluster.writeCredentials(path, 'client')` write it; `sps status` and `sps request` read it.
 *
 *   {
 *     "clusterId": "sps-3f9a0c1b2d4e",          the run's id (subjects sps.<clusterId>.…)
 *     "url": "nats://127.0.0.1:40123",          the NATS server, comma-separated URLs allowed
 *     "auth": { "nkeySeed": "SU…" },            optional: or { "token" }, { "user", "pass" }, { "creds": <.creds text> }
 *     "inboxPrefix": "_INBOX_sps-….client",     optional: the only reply inbox the identity may use
 *     "tls": { "ca": "-----BEGIN CERTIFICATE…" } optional: PEM text of the CA (and "cert", "key" for mutual TLS)
 *   }
 *
 * The file holds a secret: it is created anew with mode 0600, so a file left by someone else
 * cannot widen who reads it. Errors about it name the field, never a value.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { InvalidOptionError } from '../errors.js';
import { fieldsOf, isObject, unknownField } from '../option-fields.js';
import { BUS_AUTH_FIELDS, BUS_TLS_FIELDS, type BusAccess } from '../security/bus-access.js';

/** The content of a credentials file: the cluster's id and the bus access of one identity. */
export interface CredentialsFile extends BusAccess {
  /** Id of the cluster run (`cluster.id`). */
  clusterId: string;
}

const FILE_FIELDS = fieldsOf<CredentialsFile>({ clusterId: true, url: true, auth: true, tls: true, inboxPrefix: true, reconnectWindowMs: true });

/** Writes a credentials file: created anew with mode 0600. */
export function writeCredentialsFile(path: string, file: CredentialsFile): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(file) + '\n');
  } finally {
    closeSync(fd);
  }
}

/** Names an unknown field of `value` (at `where`) with the known one nearest to it. */
function checkFields(value: object, known: readonly string[], where: string, what: string): void {
  const unknown = unknownField(value, known);
  if (!unknown) return;
  const hint = unknown.guess !== undefined ? `did you mean "${unknown.guess}"?` : `known: ${known.join(', ')}`;
  throw new InvalidOptionError(what, `has an unknown field "${where}${unknown.field}" (${hint})`);
}

/**
 * Reads the JSON of a credentials file; fields may be missing (a client can give the URL and id
 * otherwise), but every field present must be one of the format's, of its type.
 * @param what Names the file in errors (`--credentials-file "creds.json"`).
 * @throws InvalidOptionError naming what was wrong.
 */
export function parseCredentialsFile(json: string, what: string): Partial<CredentialsFile> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new InvalidOptionError(what, 'is not JSON');
  }
  if (!isObject(v)) throw new InvalidOptionError(what, 'must hold one JSON object { clusterId, url, auth?, tls?, inboxPrefix? }');
  checkFields(v, FILE_FIELDS, '', what);
  for (const k of ['clusterId', 'url', 'inboxPrefix'] as const) {
    if (v[k] !== undefined && (typeof v[k] !== 'string' || v[k] === '')) throw new InvalidOptionError(what, `field "${k}" must be a non-empty string`);
  }
  if (v.reconnectWindowMs !== undefined && !Number.isSafeInteger(v.reconnectWindowMs))
    throw new InvalidOptionError(what, 'field "reconnectWindowMs" must be an integer');
  for (const [k, known] of [
    ['auth', BUS_AUTH_FIELDS],
    ['tls', BUS_TLS_FIELDS],
  ] as const) {
    const field = v[k];
    if (field === undefined) continue;
    if (!isObject(field) || Object.values(field).some((x) => typeof x !== 'string'))
      throw new InvalidOptionError(what, `field "${k}" must be an object of strings (${known.join(', ')})`);
    checkFields(field, known, `${k}.`, what);
  }
  return v as Partial<CredentialsFile>;
}
