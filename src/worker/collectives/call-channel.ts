/**
 * The {@link CallChannel} of one collective call: a value is cut into chunks on the way out and
 * put back together on the way in, and every chunk received is checked to belong to the same call
 * on the sender's side. How a chunk travels (chunk-sender.ts) and where it waits for its receive
 * (mailbox.ts) are injected, so this runs without a bus.
 */
import { CollectiveError } from '../../errors.js';
import type { CallChannel, Chunk } from './channel.js';
import { chunksOf } from './layout.js';
import { chunkKey, type Call } from './mailbox.js';
import { fromWire, type WireValue } from './values.js';

/** What a call's channel is built on. */
export interface ChannelParts {
  /** This partition, and how many there are. */
  rank: number;
  size: number;
  /** Largest chunk a value is cut into. */
  chunkBytes: number;
  /** Sends one chunk; resolves when the transport takes more. */
  sendChunk: CallChannel['sendChunk'];
  /** The chunk `key` of `call` (see {@link chunkKey}): held already, or the next to arrive. */
  take(call: Call, key: string): Promise<Chunk>;
}

/** The channel the algorithms use for `call`. */
export function callChannel(call: Call, parts: ChannelParts): CallChannel {
  const { rank, size, chunkBytes, sendChunk } = parts;
  const recvChunk = (from: number, tag: number, c: number): Promise<Chunk> =>
    parts.take(call, chunkKey(from, tag, c)).then((chunk) => {
      if (chunk.op !== call.op) {
        throw new CollectiveError(
          'SPS_COLLECTIVE_MISMATCH',
          call.op,
          `partition ${from} called ${chunk.op} as call ${call.seq} of generation ${call.generation}, where partition ${rank} called ${call.op}: every partition must make the same calls in the same order`,
        );
      }
      return chunk;
    });
  return {
    rank,
    size,
    chunkBytes,
    op: call.op,
    sendChunk,
    send: async (to, tag, w: WireValue) => {
      const chunks = chunksOf(w.bytes.length, chunkBytes);
      for (let c = 0; c < chunks.length; c++) {
        const k = chunks[c]!;
        await sendChunk(to, tag, { c, n: chunks.length, o: k.start, len: w.bytes.length, dt: w.kind, d: w.bytes.subarray(k.start, k.end) });
      }
    },
    recvChunk,
    recvValue: async (from, tag) => {
      const first = await recvChunk(from, tag, 0);
      if (first.n === 1) return fromWire({ bytes: first.d, kind: first.dt });
      const bytes = new Uint8Array(first.len);
      bytes.set(first.d, first.o);
      const rest = await Promise.all(Array.from({ length: first.n - 1 }, (_, i) => recvChunk(from, tag, i + 1)));
      for (const k of rest) {
        if (k.len !== first.len || k.n !== first.n || k.dt !== first.dt)
          throw new CollectiveError('SPS_COLLECTIVE_MISMATCH', call.op, `partition ${from} sent chunks of different values`);
        bytes.set(k.d, k.o);
        k.done?.();
      }
      first.done?.();
      return fromWire({ bytes, kind: first.dt });
    },
  };
}
