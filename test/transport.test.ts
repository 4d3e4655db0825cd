import test from 'ava';
import { PassThrough } from 'node:stream';
import { decode, encode, pack } from '../src/transport/codec.js';
import { decodeBatch, encodeFrame, readFrames } from '../src/transport/frames.js';
import { RowStream } from '../src/runtime/rows.js';
import { decodeRegistration, decodeState, encodeRegistration, encodeState } from '../src/transport/messages.js';
import { subjectsFor } from '../src/transport/subjects.js';
import { MalformedMessageError } from '../src/errors.js';

test('envelopes round-trip and carry the protocol version', (t) => {
  const env = decode('s', encode('state', { partition: 1 }));
  t.deepEqual(env, { v: 1, t: 'state', partition: 1 });
});

test('a message of another protocol version is rejected, naming subject and version', (t) => {
  const err = t.throws(() => decode('sps.x.ctl.state', pack({ v: 2, t: 'state' })), { instanceOf: MalformedMessageError });
  t.regex(err!.message, /sps\.x\.ctl\.state.*protocol version 2, expected 1/);
  t.is((err as MalformedMessageError).code, 'SPS_MALFORMED_MESSAGE');
});

test('garbage bytes and wrong shapes are rejected with what was wrong', (t) => {
  t.throws(() => decode('s', Buffer.from([0x92, 0x01])), { message: /not msgpack/ });
  t.throws(() => decode('s', pack([1, 2])), { message: /not an envelope/ });
  t.throws(() => decodeState('s', encode('state', { partition: 0, attempt: 0, state: 'dancing', pid: 1 })), { message: /unknown state "dancing"/ });
  t.throws(() => decodeRegistration('s', encode('register', { partition: -1, attempt: 0, host: 'h', port: null, pid: 1, endpoints: [] })), { message: /"partition" must be an integer/ });
  t.throws(() => decodeState('s', encode('register', {})), { message: /unexpected message type "register"/ });
});

test('registrations and states round-trip', (t) => {
  const r = { partition: 2, attempt: 1, host: '127.0.0.1', port: 8080, pid: 42, endpoints: ['a', 'b'] };
  t.deepEqual(decodeRegistration('s', encodeRegistration(r)), r);
  const s = { partition: 2, attempt: 1, state: 'failed' as const, pid: 42, error: { code: 'X', message: 'y' } };
  t.deepEqual(decodeState('s', encodeState(s)), s);
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
  await t.throwsAsync(async () => {
    for await (const _ of readFrames(input, 'rows of partition 0'));
  }, { message: /rows of partition 0: stream ended inside a frame/ });
});

test('a frame that is not a batch is an error', (t) => {
  t.throws(() => decodeBatch(Buffer.from('{"a":1}'), 'json', 'results'), { message: /results: frame is not a batch/ });
});

test('subjects are namespaced per cluster and reject unsafe ids', (t) => {
  const s = subjectsFor('sps-abc');
  t.is(s.register, 'sps.sps-abc.ctl.register');
  t.is(s.endpoint(3, 1, 'get_list'), 'sps.sps-abc.p.3.1.get_list');
  t.is(s.endpoints(3, 1), 'sps.sps-abc.p.3.1.*');
  t.throws(() => subjectsFor('a.b'), { message: /cluster id "a\.b"/ });
});
