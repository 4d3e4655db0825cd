/**
 * The collectives, written against a {@link CallChannel}: every partition runs the same function
 * with its own rank. Small values go all-to-all in one hop (each partition publishes once, to all,
 * and the NATS server fans it out). Large typed arrays under a built-in reduction go as a
 * reduce-scatter straight to each block's owner, then an all-gather of the reduced blocks, both
 * cut into chunks that are reduced and forwarded as they arrive (pipelined).
 */
import { CollectiveError } from '../../errors.js';
import type { CallChannel, Chunk } from './channel.js';
import { blockOf, chunksOf } from './layout.js';
import { isBuiltinOp, reduceInto, reduceValues, type BuiltinOp, type ReduceOp } from './reduce.js';
import { allocLike, arrayKind, arrayOf, toWire, type NumericArray } from './values.js';

/** Values from this many bytes up take the chunked reduce-scatter path in `allReduce`. */
export const LARGE_REDUCE_BYTES = 64 * 1024;

const EMPTY = { bytes: new Uint8Array(0) };

function others(ch: CallChannel): number[] {
  const out: number[] = [];
  for (let p = 0; p < ch.size; p++) if (p !== ch.rank) out.push(p);
  return out;
}

/** Every partition's `value`, in partition order (this one's as given). */
async function exchange(ch: CallChannel, value: unknown): Promise<unknown[]> {
  await ch.send('all', 0, toWire(value));
  return Promise.all(Array.from({ length: ch.size }, (_, p) => (p === ch.rank ? value : ch.recvValue(p, 0))));
}

/** Resolves once every partition has called it. */
export async function barrier(ch: CallChannel): Promise<void> {
  await ch.send('all', 0, EMPTY);
  await Promise.all(others(ch).map((p) => ch.recvChunk(p, 0, 0)));
}

/** The root's value, on every partition. */
export async function broadcast<T>(ch: CallChannel, value: T, root: number): Promise<T> {
  if (ch.rank !== root) return (await ch.recvValue(root, 0)) as T;
  await ch.send('all', 0, toWire(value));
  return value;
}

/** The root's value on each partition of `to`; the others (and the root) keep their own `value`. */
export async function sendTo<T>(ch: CallChannel, value: T, root: number, to: readonly number[]): Promise<T> {
  if (ch.rank === root) {
    const wire = toWire(value);
    await Promise.all(to.map((p) => ch.send(p, 0, wire)));
    return value;
  }
  return to.includes(ch.rank) ? ((await ch.recvValue(root, 0)) as T) : value;
}

/** Every partition's value in partition order on the root; `undefined` elsewhere. */
export async function gather<T>(ch: CallChannel, value: T, root: number): Promise<T[] | undefined> {
  if (ch.rank !== root) {
    await ch.send(root, 0, toWire(value));
    return undefined;
  }
  return (await Promise.all(Array.from({ length: ch.size }, (_, p) => (p === ch.rank ? value : ch.recvValue(p, 0))))) as T[];
}

/** Every partition's value in partition order, on every partition. */
export async function allGather<T>(ch: CallChannel, value: T): Promise<T[]> {
  return (await exchange(ch, value)) as T[];
}

function mismatch(ch: CallChannel, message: string): CollectiveError {
  return new CollectiveError('SPS_COLLECTIVE_MISMATCH', ch.op, message);
}

/** Reduces every partition's value in partition order; values that do not match name their partition. */
function reduceAll(ch: CallChannel, values: unknown[], op: ReduceOp): unknown {
  try {
    return reduceValues(values, op, (i) => `partition ${i}'s value`);
  } catch (err) {
    if (err instanceof TypeError) throw mismatch(ch, err.message);
    throw err;
  }
}

/** True when `allReduce` of `value` under `op` takes the chunked path (every partition decides alike from the same value shape). */
export function takesLargePath(value: unknown, op: ReduceOp, size: number): boolean {
  return size > 1 && isBuiltinOp(op) && arrayKind(value) !== undefined && (value as NumericArray).byteLength >= LARGE_REDUCE_BYTES;
}

/**
 * The reduction of every partition's value (`op` applied in partition order), on every partition.
 * With `inPlace` (a typed array only) the result is written into `value`, which is returned.
 */
export async function allReduce<T>(ch: CallChannel, value: T, op: ReduceOp, ring = false, inPlace = false): Promise<T> {
  if (takesLargePath(value, op, ch.size)) {
    const x = value as NumericArray;
    return (await (ring && ch.size <= RING_MAX_PARTITIONS
      ? allReduceRing(ch, x, op as BuiltinOp, inPlace)
      : allReduceLarge(ch, x, op as BuiltinOp, inPlace))) as T;
  }
  if (!inPlace) return reduceAll(ch, await exchange(ch, value), op) as T;
  // A small value is sent as a copy: bytes still queued on a socket must not change under it.
  const x = value as NumericArray;
  const sum = reduceAll(ch, await exchange(ch, x.slice()), op) as NumericArray;
  (x as Float64Array).set(sum as Float64Array);
  return value;
}

/** Checks a chunk of a peer's block against what this partition expects of it. */
function checkChunk(ch: CallChannel, got: Chunk, kind: string, len: number, start: number, end: number): void {
  if (got.dt !== kind || got.len !== len || got.o !== start || got.d.length !== end - start) {
    throw mismatch(
      ch,
      `partition ${got.from} sent ${got.dt ?? 'a msgpack value'} of ${got.len} bytes for a block of ${len} bytes of ${kind}: every partition must pass a value of the same kind and length`,
    );
  }
}

/**
 * Reduce-scatter of a typed array: sends every other partition its block, chunk by chunk, and
 * reduces this partition's block into `target` chunk by chunk as each chunk has come from every
 * peer (in partition order, so the result does not depend on arrival). `reduced(c)` runs after
 * chunk `c` of the target is final.
 */
async function scatterReduce(
  ch: CallChannel,
  x: NumericArray,
  op: BuiltinOp,
  target: NumericArray,
  reduced?: (c: number) => Promise<void>,
  inPlace = false,
): Promise<void> {
  const kind = arrayKind(x)!;
  const E = x.BYTES_PER_ELEMENT;
  const xBytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const blocks = Array.from({ length: ch.size }, (_, j) => {
    const b = blockOf(x.length, ch.size, j);
    const len = (b.end - b.start) * E;
    return { at: b.start * E, len, chunks: chunksOf(len, ch.chunkBytes) };
  });
  // Round-robin over the receivers, so every block owner starts reducing after one chunk.
  const most = Math.max(...blocks.map((b) => b.chunks.length));
  for (let c = 0; c < most; c++) {
    for (const j of others(ch)) {
      const b = blocks[j]!;
      const k = b.chunks[c];
      if (k) await ch.sendChunk(j, 0, { c, n: b.chunks.length, o: k.start, len: b.len, dt: kind, d: xBytes.subarray(b.at + k.start, b.at + k.end) });
    }
  }
  const mine = blocks[ch.rank]!;
  const out = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  // In place, the target is this partition's own block of `x`: partition 0's chunk goes there
  // first, so this partition's own chunk is kept aside until its turn (partition order).
  const aside = inPlace && ch.rank !== 0 ? new Uint8Array(Math.min(ch.chunkBytes, mine.len)) : undefined;
  for (let c = 0; c < mine.chunks.length; c++) {
    const { start, end } = mine.chunks[c]!;
    const parts = await Promise.all(others(ch).map((p) => ch.recvChunk(p, 0, c)));
    for (const part of parts) checkChunk(ch, part, kind, mine.len, start, end);
    let own = xBytes.subarray(mine.at + start, mine.at + end);
    if (aside) {
      aside.set(own);
      own = aside.subarray(0, end - start);
    }
    const bytesOf = (p: number): Uint8Array => (p === ch.rank ? own : parts[p < ch.rank ? p : p - 1]!.d);
    out.set(bytesOf(0), start);
    const acc = arrayOf(kind, out.subarray(start, end));
    for (let p = 1; p < ch.size; p++) reduceInto(acc, arrayOf(kind, bytesOf(p)), op);
    for (const part of parts) part.done?.();
    await reduced?.(c);
  }
}

/**
 * allReduce of a large typed array: reduce-scatter to the block owners, then all-gather of the
 * reduced blocks, pipelined by chunk. In place, `x` is the result: its own block is reduced into
 * (never sent in the reduce-scatter), and a reduced chunk of block j arrives only after its owner
 * had this partition's chunk of it, so the bytes sent from there have left before they change.
 */
async function allReduceLarge(ch: CallChannel, x: NumericArray, op: BuiltinOp, inPlace: boolean): Promise<NumericArray> {
  const kind = arrayKind(x)!;
  const E = x.BYTES_PER_ELEMENT;
  const result = inPlace ? x : allocLike(x, x.length);
  const out = new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
  const own = blockOf(x.length, ch.size, ch.rank);
  const ownLen = (own.end - own.start) * E;
  const ownChunks = chunksOf(ownLen, ch.chunkBytes);
  const target = result.subarray(own.start, own.end) as NumericArray;
  const reducing = scatterReduce(
    ch,
    x,
    op,
    target,
    (c) => {
      const k = ownChunks[c]!;
      return ch.sendChunk('all', 1, {
        c,
        n: ownChunks.length,
        o: k.start,
        len: ownLen,
        dt: kind,
        d: out.subarray(own.start * E + k.start, own.start * E + k.end),
      });
    },
    inPlace,
  );
  const gathering = others(ch).map(async (j) => {
    const b = blockOf(x.length, ch.size, j);
    const len = (b.end - b.start) * E;
    const chunks = chunksOf(len, ch.chunkBytes);
    await Promise.all(
      chunks.map(async (k, c) => {
        const got = await ch.recvChunk(j, 1, c);
        checkChunk(ch, got, kind, len, k.start, k.end);
        out.set(got.d, b.start * E + k.start);
        got.done?.();
      }),
    );
  });
  await Promise.all([reducing, ...gathering]);
  return result;
}

/** Largest group the ring runs on (its phases are tags 0..2n-3 of the 0..255 a message may carry). */
export const RING_MAX_PARTITIONS = 128;

/**
 * allReduce of a large typed array as a ring: n−1 reduce-scatter steps, then n−1 all-gather steps,
 * each passing one block to the right neighbour. Chunks are forwarded as soon as they are reduced
 * (pipelined). Each block is reduced along one path, so every partition gets the same bits. Kept
 * for comparison with {@link allReduceLarge}: through one NATS server it moves more bytes.
 */
export async function allReduceRing(ch: CallChannel, x: NumericArray, op: BuiltinOp, inPlace = false): Promise<NumericArray> {
  const n = ch.size;
  const kind = arrayKind(x)!;
  const E = x.BYTES_PER_ELEMENT;
  const right = (ch.rank + 1) % n;
  const left = (ch.rank + n - 1) % n;
  const mod = (v: number): number => ((v % n) + n) % n;
  // In place too, a block changes only after what was sent of it went round the ring through the right neighbour.
  const result = inPlace ? x : (x.slice() as NumericArray);
  const bytes = new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
  const blocks = Array.from({ length: n }, (_, j) => {
    const b = blockOf(x.length, n, j);
    const len = (b.end - b.start) * E;
    return { at: b.start * E, len, chunks: chunksOf(len, ch.chunkBytes) };
  });
  const forward = (tag: number, j: number, c: number): Promise<void> => {
    const b = blocks[j]!;
    const k = b.chunks[c]!;
    return ch.sendChunk(right, tag, { c, n: b.chunks.length, o: k.start, len: b.len, dt: kind, d: bytes.subarray(b.at + k.start, b.at + k.end) });
  };
  for (let c = 0; c < blocks[ch.rank]!.chunks.length; c++) await forward(0, ch.rank, c);
  // Reduce-scatter: step s brings block r−s−1 from the left; after the last step block r+1 is final.
  for (let s = 0; s < n - 1; s++) {
    const j = mod(ch.rank - s - 1);
    const b = blocks[j]!;
    for (let c = 0; c < b.chunks.length; c++) {
      const k = b.chunks[c]!;
      const got = await ch.recvChunk(left, s, c);
      checkChunk(ch, got, kind, b.len, k.start, k.end);
      reduceInto(arrayOf(kind, bytes.subarray(b.at + k.start, b.at + k.end)), arrayOf(kind, got.d), op);
      got.done?.();
      await forward(s + 1, j, c); // the next reduce-scatter step, or (after the last) the first all-gather step
    }
  }
  // All-gather: step s brings the final block r−s from the left.
  for (let s = 0; s < n - 1; s++) {
    const j = mod(ch.rank - s);
    const b = blocks[j]!;
    for (let c = 0; c < b.chunks.length; c++) {
      const k = b.chunks[c]!;
      const got = await ch.recvChunk(left, n - 1 + s, c);
      checkChunk(ch, got, kind, b.len, k.start, k.end);
      bytes.set(got.d, b.at + k.start);
      got.done?.();
      if (s < n - 2) await forward(n + s, j, c);
    }
  }
  return result;
}

/** Converts a reduce-scatter argument to a typed array (arrays of numbers travel as Float64Array). */
function asNumeric(ch: CallChannel, value: unknown): NumericArray {
  if (arrayKind(value)) return value as NumericArray;
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return Float64Array.from(value as number[]);
  throw new CollectiveError('SPS_COLLECTIVE_ARGUMENT', ch.op, 'the value must be a typed array or an array of numbers');
}

/**
 * Reduce-scatter: the element-wise reduction of every partition's vector, of which each partition
 * gets its own block (partition i of n gets elements [⌊i·L/n⌋, ⌊(i+1)·L/n⌋)), of the same kind as
 * it passed. A function `op` gets two blocks at a time.
 */
export async function reduceScatter<T>(ch: CallChannel, value: T, op: ReduceOp): Promise<T> {
  const x = asNumeric(ch, value);
  const plain = !arrayKind(value);
  const own = blockOf(x.length, ch.size, ch.rank);
  let block: unknown;
  if (isBuiltinOp(op)) {
    const target = allocLike(x, own.end - own.start);
    await scatterReduce(ch, x, op, target);
    block = target;
  } else {
    const blockOfValue = (p: number): unknown => {
      const b = blockOf(x.length, ch.size, p);
      const part = x.subarray(b.start, b.end);
      return plain ? Array.from(part as Float64Array) : part;
    };
    for (let p = 0; p < ch.size; p++) if (p !== ch.rank) await ch.send(p, 0, toWire(blockOfValue(p)));
    const parts = await Promise.all(Array.from({ length: ch.size }, (_, p) => (p === ch.rank ? blockOfValue(p) : ch.recvValue(p, 0))));
    return reduceAll(ch, parts, op) as T;
  }
  return (plain ? Array.from(block as Float64Array) : block) as T;
}
