/** Arrow rows in the worker: plain objects from record batches, longs, and malformed streams. */
import test from 'ava';
import { Readable } from 'node:stream';
import { Int32, Table, Utf8, tableFromArrays, tableToIPC, vectorFromArray } from 'apache-arrow';
import { RowObjects } from '../src/worker/arrow-rows.js';
import { RowStream } from '../src/worker/rows.js';

const ipc = (columns: Parameters<typeof tableFromArrays>[0]): Buffer => Buffer.from(tableToIPC(tableFromArrays(columns), 'stream'));
/** The bytes as a stream in pieces of `size`, so messages span chunks as they do on a pipe. */
const chunked = (bytes: Buffer, size = 7): Readable =>
  Readable.from(Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)));

async function objects(bytes: Buffer, longs?: 'number' | 'bigint'): Promise<unknown[]> {
  const rows = new RowStream<unknown>(chunked(bytes), 'arrow', 'partition 3 rows on stdin', longs);
  const out: unknown[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

test('64-bit integers become numbers, or BigInts with longs: "bigint"; Arrow streams back to back are one partition', async (t) => {
  const a = ipc({ id: BigInt64Array.from([1n, -(2n ** 53n) + 1n]), name: ['a', 'b'] });
  const b = ipc({ id: BigInt64Array.from([2n ** 53n - 1n]), name: ['c'] });
  const both = Buffer.concat([a, b]);
  t.deepEqual(await objects(both), [
    { id: 1, name: 'a' },
    { id: -(2 ** 53) + 1, name: 'b' },
    { id: 2 ** 53 - 1, name: 'c' },
  ]);
  t.deepEqual(await objects(both, 'bigint'), [
    { id: 1n, name: 'a' },
    { id: -(2n ** 53n) + 1n, name: 'b' },
    { id: 2n ** 53n - 1n, name: 'c' },
  ]);
});

test('sliced record batches (values at an offset, nulls) become the right rows', async (t) => {
  const table = tableFromArrays({ id: BigInt64Array.from([10n, 11n, 12n, 13n]), v: Int32Array.from([1, 2, 3, 4]), d: Float64Array.from([0.5, 1.5, 2.5, 3.5]) });
  const sliced = new RowObjects('number').objects(table.slice(2).batches[0]!);
  t.deepEqual(sliced, [
    { id: 12, v: 3, d: 2.5 },
    { id: 13, v: 4, d: 3.5 },
  ]);
  const withNulls = new Table({ v: vectorFromArray([1, null, 3, null, 5], new Int32()), s: vectorFromArray(['a', null, 'c', 'd', null], new Utf8()) });
  t.deepEqual(new RowObjects('bigint').objects(withNulls.slice(1, 4).batches[0]!), [
    { v: null, s: null },
    { v: 3, s: 'c' },
    { v: null, s: 'd' },
  ]);
});

test('a 64-bit integer beyond 2^53 fails as a number, naming the column and the option', async (t) => {
  const bytes = ipc({ big: BigInt64Array.from([2n ** 53n + 1n]) });
  await t.throwsAsync(objects(bytes), { code: 'SPS_ROWS_LONG_OVERFLOW', message: /column "big": 9007199254740993 .*longs: 'bigint'/ });
  t.deepEqual(await objects(bytes, 'bigint'), [{ big: 2n ** 53n + 1n }]);
});

test('a malformed Arrow stream fails with SPS_ROWS_MALFORMED naming the partition', async (t) => {
  const good = ipc({ x: Float64Array.from({ length: 1000 }, (_, i) => i), s: Array.from({ length: 1000 }, (_, i) => `v${i}`) });
  t.is((await objects(good)).length, 1000);
  const cases: Record<string, Buffer> = {
    'cut inside a message': good.subarray(0, good.length - 100),
    'cut between messages (no end-of-stream marker)': good.subarray(0, good.length - 8),
    'not Arrow at all': Buffer.from('{"this is":"json, not an Arrow stream"}'.repeat(4)),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    await t.throwsAsync(objects(bytes), { code: 'SPS_ROWS_MALFORMED', message: /^partition 3 rows on stdin: malformed Arrow stream: / }, name);
  }
});

test('rows.arrow() on rows that did not arrive as Arrow says so', (t) => {
  const rows = new RowStream<unknown>(Readable.from([]), 'msgpack', 'partition 0 rows on stdin');
  t.is(rows.format, 'msgpack');
  t.throws(() => rows.arrow(), { code: 'SPS_ROWS_NOT_ARROW', message: /partition 0 rows on stdin: the rows arrive as msgpack batches, not Arrow/ });
});
