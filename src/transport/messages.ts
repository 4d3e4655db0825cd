import { MalformedMessageError } from '../errors.js';
import { PARTITION_STATES, toWireError, type Member, type PartitionState, type Registration, type WireError } from '../actors/types.js';
import { decode, encode } from './codec.js';

/** Message types of the control protocol. */
export const MSG = {
  register: 'register',
  registerAck: 'register-ack',
  state: 'state',
  shutdown: 'shutdown',
  members: 'members',
  membersGet: 'members-get',
  request: 'req',
  reply: 'res',
} as const;

/** A partition's state change as sent by a worker. */
export interface StateReport {
  partition: number;
  attempt: number;
  state: PartitionState;
  pid: number;
  error?: WireError;
}

/** The supervisor's answer to a registration. */
export interface RegisterAck {
  accepted: boolean;
  /** Set when the cluster is already stopping: the partition should drain right away. */
  shutdown: boolean;
  reason?: string;
  /** Epoch of `members`, comparable with the epochs of membership broadcasts. */
  epoch: number;
  members: Member[];
}

/** A reply from a partition endpoint. */
export type EndpointReply = { ok: true; body: unknown } | { ok: false; error: WireError };

export { toWireError };

function fail(subject: string, problem: string): never {
  throw new MalformedMessageError(subject, problem);
}

function int(subject: string, o: Record<string, unknown>, k: string, min = 0): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(subject, `field "${k}" must be an integer >= ${min}`);
  return v;
}

function str(subject: string, o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') fail(subject, `field "${k}" must be a string`);
  return v;
}

function wireError(subject: string, v: unknown): WireError | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object') fail(subject, 'field "error" must be an object');
  const e = v as Record<string, unknown>;
  return { code: str(subject, e, 'code'), message: str(subject, e, 'message') };
}

/** Encodes a `register` request (worker → supervisor). */
export function encodeRegistration(r: Registration): Uint8Array {
  return encode(MSG.register, { ...r });
}

/** Decodes and checks a `register` request; throws MalformedMessageError naming the bad field. */
export function decodeRegistration(subject: string, data: Uint8Array): Registration {
  const m = decode(subject, data, [MSG.register]);
  const port = m.port;
  if (port !== null && (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)) {
    fail(subject, 'field "port" must be a TCP port or null');
  }
  const endpoints = m.endpoints;
  if (!Array.isArray(endpoints) || endpoints.some((e) => typeof e !== 'string')) {
    fail(subject, 'field "endpoints" must be a list of strings');
  }
  return {
    partition: int(subject, m, 'partition'),
    attempt: int(subject, m, 'attempt'),
    host: str(subject, m, 'host'),
    port: port as number | null,
    pid: int(subject, m, 'pid'),
    endpoints: endpoints as string[],
  };
}

/** Encodes the supervisor's `register-ack`. */
export function encodeRegisterAck(a: RegisterAck): Uint8Array {
  return encode(MSG.registerAck, { ...a });
}

/** Decodes and checks a `register-ack`. */
export function decodeRegisterAck(subject: string, data: Uint8Array): RegisterAck {
  const m = decode(subject, data, [MSG.registerAck]);
  return {
    accepted: m.accepted === true,
    shutdown: m.shutdown === true,
    reason: typeof m.reason === 'string' ? m.reason : undefined,
    epoch: int(subject, m, 'epoch'),
    members: decodeMemberList(subject, m.members),
  };
}

/** Encodes a `state` report (worker → supervisor). */
export function encodeState(s: StateReport): Uint8Array {
  return encode(MSG.state, { ...s });
}

/** Decodes and checks a `state` report. */
export function decodeState(subject: string, data: Uint8Array): StateReport {
  const m = decode(subject, data, [MSG.state]);
  const state = str(subject, m, 'state');
  if (!(PARTITION_STATES as readonly string[]).includes(state)) fail(subject, `unknown state "${state}"`);
  return {
    partition: int(subject, m, 'partition'),
    attempt: int(subject, m, 'attempt'),
    state: state as PartitionState,
    pid: int(subject, m, 'pid'),
    error: wireError(subject, m.error),
  };
}

/** Encodes the `shutdown` broadcast, which carries the cluster's token. */
export function encodeShutdown(token: string): Uint8Array {
  return encode(MSG.shutdown, { token });
}

/** Decodes a `shutdown` broadcast. */
export function decodeShutdown(subject: string, data: Uint8Array): { token: string } {
  const m = decode(subject, data, [MSG.shutdown]);
  return { token: str(subject, m, 'token') };
}

/** Encodes a `members` view with its epoch. */
export function encodeMembers(epoch: number, members: Member[]): Uint8Array {
  return encode(MSG.members, { epoch, members });
}

/** Decodes and checks a `members` view. */
export function decodeMembers(subject: string, data: Uint8Array): { epoch: number; members: Member[] } {
  const m = decode(subject, data, [MSG.members]);
  return { epoch: int(subject, m, 'epoch'), members: decodeMemberList(subject, m.members) };
}

function decodeMemberList(subject: string, v: unknown): Member[] {
  if (!Array.isArray(v)) fail(subject, 'field "members" must be a list');
  return v.map((x) => {
    if (x === null || typeof x !== 'object') fail(subject, 'member must be an object');
    const o = x as Record<string, unknown>;
    const state = str(subject, o, 'state');
    if (!(PARTITION_STATES as readonly string[]).includes(state)) fail(subject, `unknown member state "${state}"`);
    return {
      partition: int(subject, o, 'partition'),
      attempt: int(subject, o, 'attempt'),
      host: str(subject, o, 'host'),
      port: typeof o.port === 'number' ? o.port : null,
      pid: int(subject, o, 'pid'),
      state: state as PartitionState,
      endpoints: Array.isArray(o.endpoints) ? (o.endpoints.filter((e) => typeof e === 'string') as string[]) : [],
      error: wireError(subject, o.error),
    };
  });
}

/** Encodes an endpoint request (`req`) around its payload. */
export function encodeRequest(body: unknown): Uint8Array {
  return encode(MSG.request, { body });
}

/** Decodes an endpoint request and returns its payload. */
export function decodeRequest(subject: string, data: Uint8Array): unknown {
  return decode(subject, data, [MSG.request]).body;
}

/** Encodes an endpoint reply (`res`): a body, or an error with a code. */
export function encodeReply(reply: EndpointReply): Uint8Array {
  return encode(MSG.reply, reply.ok ? { ok: true, body: reply.body } : { ok: false, error: reply.error });
}

/** Decodes an endpoint reply. */
export function decodeReply(subject: string, data: Uint8Array): EndpointReply {
  const m = decode(subject, data, [MSG.reply]);
  if (m.ok === true) return { ok: true, body: m.body };
  const error = wireError(subject, m.error);
  if (!error) fail(subject, 'failed reply without "error"');
  return { ok: false, error };
}
