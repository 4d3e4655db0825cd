import type { Member, Registration } from './types.js';
import { decode, encode } from './codec.js';
import { toWireValue } from './wire-values.js';
import type { MessageOf } from './schema.js';

/** A partition's state change as sent by a worker (the partition is the subject's). */
export type StateReport = MessageOf<'state'>;

/** The supervisor's answer to a registration. */
export type RegisterAck = MessageOf<'register-ack'>;

/** A reply from a partition endpoint. */
export type EndpointReply = MessageOf<'res'>;

export { toWireError } from './types.js';

/** A registration with the proof its launcher issued to the attempt (the proof never reaches the membership). */
export type ProvenRegistration = Registration & { proof: string };

/** Encodes a `register` request (worker → supervisor, on its own partition's subject). */
export function encodeRegistration(r: Omit<ProvenRegistration, 'partition'>): Uint8Array {
  const fields = { attempt: r.attempt, host: r.host, port: r.port, pid: r.pid, endpoints: r.endpoints, proof: r.proof };
  const direct = { ...(r.peerPort === undefined ? {} : { peerPort: r.peerPort }), ...(r.peerCert === undefined ? {} : { peerCert: r.peerCert }) };
  return encode('register', { ...fields, ...direct });
}

/** Decodes and checks a `register` request; the partition comes from the subject. */
export function decodeRegistration(subject: string, data: Uint8Array, partition: number): ProvenRegistration {
  const { t: _t, ...m } = decode(subject, data, ['register']);
  return { partition, ...m };
}

/** Encodes the supervisor's `register-ack`. */
export function encodeRegisterAck(a: RegisterAck): Uint8Array {
  return encode('register-ack', a);
}

/** Decodes and checks a `register-ack`. */
export function decodeRegisterAck(subject: string, data: Uint8Array): RegisterAck {
  const { t: _t, ...m } = decode(subject, data, ['register-ack']);
  return m;
}

/** Encodes a `state` report (worker → supervisor, on its own partition's subject). */
export function encodeState(s: StateReport): Uint8Array {
  return encode('state', s.error ? s : { attempt: s.attempt, state: s.state, pid: s.pid });
}

/** Decodes and checks a `state` report. */
export function decodeState(subject: string, data: Uint8Array): StateReport {
  const { t: _t, ...m } = decode(subject, data, ['state']);
  return m;
}

/** A partition's request counters (worker → driver, on its own partition's `ctl.stats` subject). */
export type StatsReport = MessageOf<'stats'>;

/** Encodes a `stats` report. */
export function encodeStats(s: StatsReport): Uint8Array {
  return encode('stats', s);
}

/** Decodes and checks a `stats` report; the partition comes from the subject. */
export function decodeStats(subject: string, data: Uint8Array): StatsReport {
  const { t: _t, ...m } = decode(subject, data, ['stats']);
  return m;
}

/** Encodes the `shutdown` broadcast. It carries nothing: only the driver may publish it. */
export function encodeShutdown(): Uint8Array {
  return encode('shutdown', {});
}

/** Decodes a `shutdown` broadcast. */
export function decodeShutdown(subject: string, data: Uint8Array): void {
  decode(subject, data, ['shutdown']);
}

/** A membership view: its epoch, the generation, and the members. */
export interface MembersView {
  epoch: number;
  generation: number;
  members: Member[];
}

/** Encodes a `members` view with its epoch and generation. */
export function encodeMembers(view: MembersView): Uint8Array {
  return encode('members', { epoch: view.epoch, generation: view.generation, members: view.members.map(wireMember) });
}

/** What changed in the membership between epochs `from` and `epoch`, and the generation at `epoch`. */
export interface MembersDelta extends MembersView {
  from: number;
}

/** Encodes the members that changed between epochs `from` and `epoch`. */
export function encodeMembersDelta(d: MembersDelta): Uint8Array {
  return encode('members-delta', { from: d.from, epoch: d.epoch, generation: d.generation, members: d.members.map(wireMember) });
}

/** Decodes and checks a `members-delta`. */
export function decodeMembersDelta(subject: string, data: Uint8Array): MembersDelta {
  const { from, epoch, generation, members } = decode(subject, data, ['members-delta']);
  return { from, epoch, generation, members };
}

/** Decodes and checks a `members` view. */
export function decodeMembers(subject: string, data: Uint8Array): MembersView {
  const { epoch, generation, members } = decode(subject, data, ['members']);
  return { epoch, generation, members };
}

// msgpack has no `undefined`; an absent error must be absent, not nil, to pass the schema.
function wireMember(m: Member): Member {
  if (m.error) return m;
  const { error: _e, ...rest } = m;
  return rest;
}

/** Encodes an endpoint request (`req`) around its payload. */
export function encodeRequest(body: unknown): Uint8Array {
  return encode('req', { body: toWireValue(body, 'request', 'msgpack') });
}

/** Decodes an endpoint request and returns its payload. */
export function decodeRequest(subject: string, data: Uint8Array): unknown {
  return decode(subject, data, ['req']).body;
}

/** Encodes an endpoint reply (`res`): a body, or an error with a code. */
export function encodeReply(reply: EndpointReply): Uint8Array {
  return encode('res', reply.ok ? { ok: true, body: reply.body } : { ok: false, error: { code: reply.error.code, message: reply.error.message } });
}

/** Decodes an endpoint reply. */
export function decodeReply(subject: string, data: Uint8Array): EndpointReply {
  const { t: _t, ...m } = decode(subject, data, ['res']);
  return m;
}
