import type { WireValue } from './values.js';

/** One chunk of a collective's data, as it arrived from a peer (already checked against the protocol). */
export interface Chunk {
  from: number;
  op: string;
  tag: number;
  /** Chunk index and count. */
  c: number;
  n: number;
  /** Byte offset of this chunk in the value, and the value's byte length. */
  o: number;
  len: number;
  /** Typed-array kind, or absent for a msgpack value. */
  dt?: string;
  d: Uint8Array;
  /**
   * Says the receiver is done with `d` (copied or reduced it, and keeps no view of it), so its
   * buffer may be used again; absent when there is nothing to give back. Call it at most once.
   */
  done?: () => void;
}

/**
 * What the collective algorithms see of one call: who they are, and sending and receiving tagged
 * chunks within the call. The communicator implements it over NATS (sequence, generation and
 * attempt are its business, not the algorithms').
 */
export interface CallChannel {
  /** This partition. */
  readonly rank: number;
  /** Number of partitions. */
  readonly size: number;
  /** Largest chunk a value is cut into (a multiple of 8 bytes). */
  readonly chunkBytes: number;
  /** The name of the collective, for error messages. */
  readonly op: string;
  /**
   * Sends one chunk of a value to one partition or to all of them; resolves when the transport
   * takes more (flow control: await it before sending the next).
   */
  sendChunk(to: number | 'all', tag: number, chunk: Omit<Chunk, 'from' | 'op' | 'tag'>): Promise<void>;
  /** Sends a whole value, cut into chunks, one after another as the transport takes them. */
  send(to: number | 'all', tag: number, value: WireValue): Promise<void>;
  /** Resolves with chunk `c` of phase `tag` from partition `from`. */
  recvChunk(from: number, tag: number, c: number): Promise<Chunk>;
  /** Resolves with the whole value partition `from` sent in phase `tag`, decoded. */
  recvValue(from: number, tag: number): Promise<unknown>;
}
