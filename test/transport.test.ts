import test from 'ava';
import { PassThrough } from 'node:stream';
import { readFileSync } from 'node:fs';
import { decode, encode, MAX_MESSAGE_BYTES, pack, PROTOCOL_VERSION, unpack } from '../src/protocol/codec.js';
import { renderChecks, renderJsonSchema } from '../src/protocol/codegen.js';
import { decodeBatch, encodeFrame, readFrames } from '../src/transport/frames.js';
import { RowStream } from '../src/worker/rows.js';
import { decodeRegistration, decodeState, encodeRegistration, encodeState } from '../src/protocol/messages.js';
import { partitionOf, subjectsFor } from '../src/protocol/subjects.js';
import { MalformedMessageError } from '../src/errors.js';

test('envelopes round-trip and carry the protocol version', (t) => {
  const env = decode('s', encode('state', { attempt: 1, state: 'serving', pid: 7 }), ['state']);
  t.deepEqual(env, { t: 'state', attempt: 1, state: 'serving', pid: 7 });
  t.like(unpack(encode('shutdown', {})) as object, { v: PROTOCOL_VERSION, t: 'shutdown' });
});

test('a message of another protocol version is rejected, naming subject and version', (t) => {
  const err = t.throws(() => decode('sps.x.ctl.state.0', pack({ v: 1, t: 'state' }), ['state']), { instanceOf: MalformedMessageError });
  t.regex(err!.message, /sps\.x\.ctl\.state\.0.*protocol version 1, expected 2/);
  t.is((err as MalformedMessageError).code, 'SPS_MALFORMED_MESSAGE');
});

test('garbage bytes and wrong shapes are rejected with what was wrong', (t) => {
  t.throws(() => decode('s', Buffer.from([0x92, 0x01]), ['state']), { message: /not msgpack/ });
  t.throws(() => decode('s', pack([1, 2]), ['state']), { message: /not an envelope/ });
  const v = PROTOCOL_VERSION;
  t.throws(() => decodeState('s', pack({ v, t: 'state', attempt: 0, state: 'dancing', pid: 1 })), { message: /"state" field "state"/ });
  t.throws(() => decodeRegistration('s', pack({ v, t: 'register', attempt: -1, host: 'h', port: null, pid: 1, endpoints: [], proof: 'ab'.repeat(32) }), 0), {
    message: /field "attempt"/,
  });
  t.throws(
    () => decodeRegistration('s', pack({ v, t: 'register', attempt: 0, host: 'h', port: null, pid: 1, endpoints: ['a.b'], proof: 'ab'.repeat(32) }), 0),
    {
      message: /"register" field "endpoints": does not match the protocol/,
    },
  );
  // A field the protocol does not define (here: a partition claimed in the body) makes it malformed.
  t.throws(() => decodeState('s', pack({ v, t: 'state', partition: 3, attempt: 0, state: 'serving', pid: 1 })), {
    message: /"state" field "partition": Unexpected property/,
  });
  t.throws(() => decodeState('s', encode('shutdown', {})), { message: /unexpected message type "shutdown"/ });
  t.throws(() => decode('s', new Uint8Array(MAX_MESSAGE_BYTES + 1), ['req']), { message: /more than the/ });
});

test('registrations and states round-trip; the partition comes from the subject', (t) => {
  const r = { attempt: 1, host: '127.0.0.1', port: 8080, pid: 42, endpoints: ['a', 'b'], proof: 'ab'.repeat(32) };
  t.deepEqual(decodeRegistration('s', encodeRegistration(r), 2), { partition: 2, ...r });
  const s = { attempt: 1, state: 'failed' as const, pid: 42, error: { code: 'X', message: 'y' } };
  t.deepEqual(decodeState('s', encodeState(s)), s);
});

test('the Python runner and the decoder read the same protocol definition (generated files are up to date)', (t) => {
  const read = (name: string): string => readFileSync(new URL(`../src/protocol/${name}`, import.meta.url), 'utf8');
  t.is(read('protocol.schema.json'), renderJsonSchema(PROTOCOL_VERSION), 'run "npm run protocol"');
  t.is(read('checks.generated.ts'), renderChecks(), 'run "npm run protocol"');
});

test('frames survive arbitrary chunking, in both formats', async (t) => {
  for (const format of ['msgpack', 'json'] as const) {
    const batches = [[1, 2, 3], [{ a: 'x' }], [], Array.from({ length: 500 }, (_, i) => ({ i, s: 'y'.repeat(i % 7) }))];
    const bytes = Buffer.concat(batches.map((b) => encodeFrame(b, format)));
    const input = new PassThrough();
    const got = (async () => {
      const rows: unknown[] = [];
      for await (const r of new RowStream(input, format, 'test')) rows.push(r);
      return rows;
    })();
    // Feed in odd-sized chunks so frames and length prefixes are split.
    for (let off = 0; off < bytes.length; off += 7) input.write(bytes.subarray(off, off + 7));
    input.end();
    t.deepEqual(await got, batches.flat());
  }
});

test('rows can be read batch by batch, only once, and the rest is drained', async (t) => {
  const input = new PassThrough();
  input.end(Buffer.concat([encodeFrame([1, 2], 'msgpack'), encodeFrame([3], 'msgpack'), encodeFrame([4, 5], 'msgpack')]));
  const rows = new RowStream<number>(input, 'msgpack', 'rows of partition 4');
  for await (const batch of rows.batches()) {
    t.deepEqual(batch, [1, 2]);
    break;
  }
  t.throws(() => rows[Symbol.asyncIterator](), { code: 'SPS_ROWS_READ_TWICE', message: /rows of partition 4: the rows can only be read once/ });
  await rows.drainRest();
  t.true(input.readableEnded);
});

test('a stream that ends inside a frame is an error', async (t) => {
  const input = new PassThrough();
  const frame = encodeFrame([1, 2, 3], 'msgpack');
  input.end(frame.subarray(0, frame.length - 1));
  await t.throwsAsync(
    async () => {
      for await (const _ of readFrames(input, 'rows of partition 0'));
    },
    { message: /rows of partition 0: stream ended inside a frame/ },
  );
});

test('a frame that is not a batch is an error', (t) => {
  t.throws(() => decodeBatch(Buffer.from('{"a":1}'), 'json', 'results'), { message: /results: frame is not a batch/ });
});

test('subjects are namespaced per cluster and reject unsafe ids', (t) => {
  const s = subjectsFor('sps-abc');
  t.is(s.register(2), 'sps.sps-abc.ctl.register.2');
  t.is(s.state('*'), 'sps.sps-abc.ctl.state.*');
  t.is(partitionOf('sps.sps-abc.ctl.state.3', 4), 3);
  for (const bad of ['sps.x.ctl.state.4', 'sps.x.ctl.state.01', 'sps.x.ctl.state.-1', 'sps.x.ctl.state.x']) t.is(partitionOf(bad, 4), undefined, bad);
  t.is(s.endpoint(3, 1, 'get_list'), 'sps.sps-abc.p.3.1.get_list');
  t.is(s.endpoints(3, 1), 'sps.sps-abc.p.3.1.*');
  t.throws(() => subjectsFor('a.b'), { message: /"clusterId": "a\.b" must match/ });
});
