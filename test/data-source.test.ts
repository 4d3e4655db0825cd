import test from 'ava';
import { partitionSource, type ValuePartitions } from '../src/driver/launch/data-source.js';

const values = async (data: Parameters<typeof partitionSource>[0], n: number): Promise<ValuePartitions> => {
  const src = await partitionSource(data, n);
  if (src.rowFormat !== 'msgpack') throw new Error(`expected values, got ${src.rowFormat}`);
  return src;
};
const slices = async (data: Parameters<typeof partitionSource>[0], n: number) => {
  const src = await values(data, n);
  return Array.from({ length: n }, (_, p) => [...src.slice(p)]);
};

test('arrays are split into contiguous slices, as Spark parallelize does', async (t) => {
  t.deepEqual(await slices([1, 2, 3, 4, 5], 2), [
    [1, 2],
    [3, 4, 5],
  ]);
  t.deepEqual(await slices([1], 3), [[], [], [1]]);
});

test('ranges are split without materializing, with start and step', async (t) => {
  t.deepEqual(await slices({ range: { end: 6 } }, 3), [
    [0, 1],
    [2, 3],
    [4, 5],
  ]);
  t.deepEqual(await slices({ range: { start: 10, end: 0, step: -3 } }, 2), [
    [10, 7],
    [4, 1],
  ]);
  const big = await values({ range: { end: 1e12 } }, 4);
  t.is(big.slice(3)[Symbol.iterator]().next().value, 750_000_000_000);
});

test('iterables and async iterables are read once and can be sliced again for retries', async (t) => {
  function* gen() {
    yield* ['a', 'b', 'c', 'd'];
  }
  async function* agen() {
    yield* [1, 2, 3];
  }
  const src = await values(gen(), 2);
  t.deepEqual([...src.slice(1)], ['c', 'd']);
  t.deepEqual([...src.slice(1)], ['c', 'd']);
  t.deepEqual(await slices(agen(), 2), [[1], [2, 3]]);
});

test('bad sources name the option', async (t) => {
  await t.throwsAsync(partitionSource({ range: { end: 5, step: 0 } }, 2), {
    code: 'SPS_INVALID_OPTION',
    message: /"data\.range\.step": must be a safe integer other than 0/,
  });
  await t.throwsAsync(partitionSource({ range: { end: 1.5 } }, 2), { message: /"data\.range\.end": must be a safe integer/ });
  await t.throwsAsync(partitionSource(42 as never, 2), { message: /"data": must be an array, an iterable/ });
});
