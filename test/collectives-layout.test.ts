import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DIRECT_ALL_MAX_PARTITIONS, DIRECT_MIN_BYTES, sendsDirect } from '../src/worker/collectives/communicator.js';
import { alignChunk, blockOf, chunksOf } from '../src/worker/collectives/layout.js';
import { reduceValues } from '../src/worker/collectives/reduce.js';
import { fromWire, toWire } from '../src/worker/collectives/values.js';

test('blocks cover a vector exactly once, in order, also when it is shorter than the partitions', (t) => {
  for (const length of [0, 1, 3, 7, 1000]) {
    for (let parts = 1; parts <= 5; parts++) {
      const blocks = Array.from({ length: parts }, (_, i) => blockOf(length, parts, i));
      t.is(blocks[0]!.start, 0);
      t.is(blocks.at(-1)!.end, length);
      for (let i = 1; i < parts; i++) t.is(blocks[i]!.start, blocks[i - 1]!.end);
      for (const b of blocks) t.true(b.end - b.start <= Math.ceil(length / parts));
    }
  }
});

test('chunks cut bytes at the chunk size, an empty value is one empty chunk, and chunk sizes stay multiples of 8', (t) => {
  t.deepEqual(chunksOf(0, 8), [{ start: 0, end: 0 }]);
  t.deepEqual(chunksOf(20, 8), [
    { start: 0, end: 8 },
    { start: 8, end: 16 },
    { start: 16, end: 20 },
  ]);
  t.is(alignChunk(1_048_576 - 1024), 1_047_552);
  t.is(alignChunk(13), 8);
  t.is(alignChunk(3), 8);
});

test('built-in reductions run element-wise in partition order and name the partition whose value does not fit', (t) => {
  t.is(reduceValues([1, 2, 3], 'sum', String), 6);
  t.is(reduceValues([2n, 5n, 3n], 'max', String), 5n);
  t.deepEqual(
    reduceValues(
      [
        [1, 5],
        [3, 2],
      ],
      'min',
      String,
    ),
    [1, 2],
  );
  const a = new Float32Array([1, 2]);
  const r = reduceValues([a, new Float32Array([3, 4])], 'prod', String) as Float32Array;
  t.deepEqual([r.constructor.name, ...r], ['Float32Array', 3, 8]);
  t.deepEqual([...a], [1, 2], 'inputs are not mutated');
  t.is(
    reduceValues(['a', 'b', 'c'], (x, y) => `${String(x)}${String(y)}`, String),
    'abc',
  );
  t.throws(() => reduceValues([new Float32Array(2), new Float32Array(3)], 'sum', (i) => `partition ${i}'s value`), {
    message: "partition 1's value has 3 elements, partition 0's value has 2",
  });
  t.throws(() => reduceValues([new Float32Array(2), new Float64Array(2)], 'sum', (i) => `p${i}`), { message: 'p1 is Float64Array, p0 is Float32Array' });
  t.throws(() => reduceValues([{}, {}], 'sum', (i) => `p${i}`), { message: /p0 is not a number, bigint, array of numbers or typed array/ });
});

test('typed arrays travel as their own bytes and come back as the same kind; bigints stay bigints', (t) => {
  const f = new Float64Array([1.5, -2]);
  const w = toWire(f);
  t.is(w.kind, 'Float64Array');
  t.is(w.bytes.buffer, f.buffer, 'no copy on the way out');
  // Bytes at an odd offset (as a message may hold them) still make an aligned array.
  const odd = new Uint8Array(w.bytes.length + 1);
  odd.set(w.bytes, 1);
  t.deepEqual(fromWire({ bytes: odd.subarray(1), kind: 'Float64Array' }), f);
  t.is(fromWire(toWire(-(2n ** 62n))), -(2n ** 62n));
  t.throws(() => toWire(2n ** 64n), { message: /does not fit in 64 bits/ });
  t.deepEqual(fromWire(toWire({ a: [1, 'x'] })), { a: [1, 'x'] });
});

test("'auto' sends everything directly in small groups, only large values in large ones, and nothing on a TLS bus; 'nats' and 'direct' are what they say", (t) => {
  const small = DIRECT_MIN_BYTES - 1;
  t.true(sendsDirect('auto', 0, 2));
  t.true(sendsDirect('auto', small, DIRECT_ALL_MAX_PARTITIONS));
  t.false(sendsDirect('auto', small, DIRECT_ALL_MAX_PARTITIONS + 1));
  t.true(sendsDirect('auto', DIRECT_MIN_BYTES, DIRECT_ALL_MAX_PARTITIONS + 1));
  for (const bytes of [0, DIRECT_MIN_BYTES]) {
    for (const n of [2, 100]) {
      t.false(sendsDirect('nats', bytes, n));
      t.true(sendsDirect('direct', bytes, n));
      // On a TLS bus 'auto' keeps the data encrypted; 'direct' is the user's explicit choice.
      t.false(sendsDirect('auto', bytes, n, true));
      t.true(sendsDirect('direct', bytes, n, true));
    }
  }
});

test('reductions are the same where code generation from strings is off (the shared loop)', async (t) => {
  const module = new URL('../src/worker/collectives/reduce.ts', import.meta.url).href;
  const script = `
    const { reduceInto } = await import(${JSON.stringify(module)});
    const out = {};
    for (const op of ['sum', 'prod', 'min', 'max']) {
      const a = Float64Array.of(1, 5, -2); reduceInto(a, Float64Array.of(3, 2, -7), op);
      const b = BigInt64Array.of(4n, -1n); reduceInto(b, BigInt64Array.of(2n, 3n), op);
      out[op] = [...a, ...Array.from(b, String)];
    }
    console.log(JSON.stringify(out));`;
  const run = promisify(execFile);
  const expected = { sum: [4, 7, -9, '6', '2'], prod: [3, 10, 14, '8', '-3'], min: [1, 2, -7, '2', '-1'], max: [3, 5, -2, '4', '3'] };
  for (const flags of [[], ['--disallow-code-generation-from-strings']]) {
    const { stdout } = await run(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    t.deepEqual(JSON.parse(stdout), expected, flags.join(' ') || 'default');
  }
});
