/**
 * The direct path of collectives: plain TCP sockets between partitions, one per direction (the
 * connecting partition only writes, the accepting one only reads). A socket is accepted as
 * partition A only when the first bytes on it are a one-time ticket this partition gave A over
 * NATS (where the subject proves who asked); anything else is closed without a byte in return.
 * Frames are length-prefixed: a protocol header (a `coll` message without its bytes) and the raw
 * bytes, written as they are (no copy, no per-element work).
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { BufferPool } from './buffer-pool.js';

/** Bytes of a ticket on the socket (it travels as 64 hex digits in `coll-ticket`). */
export const TICKET_BYTES = 32;
/** How long a ticket may wait to be used, and a socket for its ticket. */
const TICKET_TTL_MS = 30_000;
/** How long opening a socket to a peer may take before the peer is sent to over NATS instead. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Largest header and data of one frame (a chunk is at most the NATS chunk size or 8 MB). */
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_DATA_BYTES = 8 * 1024 * 1024;
/** Tickets waiting to be used at once (a peer asking for many only pushes out its own oldest). */
const MAX_GRANTS = 1024;
/** Most bytes of received frames kept for reuse: what is in flight in a large allReduce (6 MB for 1M float32 on 4 partitions), not more, since the pool lives as long as the partition. */
const POOL_BYTES = 16 * 1024 * 1024;

/** Who a ticket lets in. */
interface Grant {
  from: number;
  attempt: number;
  generation: number;
  timer: NodeJS.Timeout;
}

/** What an accepted socket delivers: one frame from partition `from` (attempt `attempt`). */
export type FrameHandler = (from: number, attempt: number, header: Uint8Array, data: Uint8Array) => void;

/**
 * Reads a byte stream as frames `[u32 header length][u32 data length][header][data]`. Each part is
 * copied once, as it arrives, into a buffer of its own: the data into one from the pool that
 * starts at offset 0, so a typed array can view it without another copy (no joining of reads, no
 * realignment), and no read is kept after it was copied.
 */
class FrameReader {
  constructor(private readonly pool: BufferPool) {}
  private readonly prefix = Buffer.alloc(8);
  /** What is being filled: the prefix, the header, or the data; and how much of it is in. */
  private stage: 'prefix' | 'header' | 'data' = 'prefix';
  private filled = 0;
  private header: Buffer = this.prefix;
  private data: Buffer = this.prefix;

  /** Adds input; returns whole frames, or `undefined` when the stream broke the framing. */
  push(chunk: Buffer): { header: Uint8Array; data: Uint8Array }[] | undefined {
    const out: { header: Uint8Array; data: Uint8Array }[] = [];
    let at = 0;
    while (at < chunk.length || (this.stage === 'data' && this.data.length === 0)) {
      const into = this.stage === 'prefix' ? this.prefix : this.stage === 'header' ? this.header : this.data;
      const n = Math.min(into.length - this.filled, chunk.length - at);
      chunk.copy(into, this.filled, at, at + n);
      at += n;
      this.filled += n;
      if (this.filled < into.length) continue;
      this.filled = 0;
      if (this.stage === 'prefix') {
        const h = this.prefix.readUInt32LE(0);
        const d = this.prefix.readUInt32LE(4);
        if (h === 0 || h > MAX_HEADER_BYTES || d > MAX_DATA_BYTES) return undefined;
        this.header = Buffer.allocUnsafe(h);
        this.data = this.pool.take(d);
        this.stage = 'header';
      } else if (this.stage === 'header') {
        this.stage = 'data';
      } else {
        out.push({ header: this.header, data: this.data });
        this.stage = 'prefix';
      }
    }
    return out;
  }
}

/** One partition's end of the direct path: the listening socket, the tickets it gave, the sockets it opened. */
export class DirectLinks {
  private server: Server | undefined;
  private readonly grants = new Map<string, Grant>();
  /** Accepted sockets and the generation their ticket was for. */
  private readonly accepted = new Map<Socket, number>();
  /** Outgoing sockets by peer, each for one generation. */
  private readonly out = new Map<number, Promise<Socket>>();
  private readonly pool = new BufferPool(POOL_BYTES);
  /**
   * @param onFrame what an accepted socket delivers
   * @param onRefused a socket was closed before it presented a valid, unused ticket (a stranger, a replay, garbage)
   */
  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onRefused: () => void,
  ) {}

  /** Starts listening on `host` (an ephemeral port); resolves with the port. */
  async listen(host: string): Promise<number> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as { port: number }).port;
  }

  /** A new one-time ticket for partition `from`'s attempt `attempt` in `generation`. */
  grant(from: number, attempt: number, generation: number): string {
    if (this.grants.size >= MAX_GRANTS) {
      const [oldest, g] = this.grants.entries().next().value!;
      clearTimeout(g.timer);
      this.grants.delete(oldest);
    }
    const ticket = randomBytes(TICKET_BYTES).toString('hex');
    const timer = setTimeout(() => this.grants.delete(ticket), TICKET_TTL_MS);
    timer.unref();
    this.grants.set(ticket, { from, attempt, generation, timer });
    return ticket;
  }

  private accept(s: Socket): void {
    // Nothing is ever written back: a stranger learns nothing but that the port is open.
    const refuse = (): void => {
      this.onRefused();
      s.destroy();
    };
    const wait = setTimeout(refuse, TICKET_TTL_MS);
    // A stranger's silent socket must not keep the process alive.
    wait.unref();
    let head = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    const onTicket = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < TICKET_BYTES) return;
      s.off('data', onTicket);
      clearTimeout(wait);
      const ticket = head.subarray(0, TICKET_BYTES).toString('hex');
      const g = this.grants.get(ticket);
      if (!g) return refuse();
      // One use only: a replayed ticket finds nothing.
      this.grants.delete(ticket);
      clearTimeout(g.timer);
      this.accepted.set(s, g.generation);
      s.once('close', () => this.accepted.delete(s));
      const reader = new FrameReader(this.pool);
      const feed = (c: Buffer): void => {
        const frames = reader.push(c);
        if (!frames) return void s.destroy();
        for (const f of frames) this.onFrame(g.from, g.attempt, f.header, f.data);
      };
      s.on('data', feed);
      if (head.length > TICKET_BYTES) feed(head.subarray(TICKET_BYTES));
    };
    s.on('data', onTicket);
  }

  /**
   * The socket to `peer` for this generation, opened with `ticket()` on first use. One that could
   * not be opened stays failed for the generation (the caller falls back to NATS, not retrying per chunk).
   */
  socketTo(peer: number, host: string, port: number, ticket: () => Promise<string>): Promise<Socket> {
    let s = this.out.get(peer);
    if (!s) {
      s = (async () => {
        const t = await ticket();
        const sock = connect({ host, port, noDelay: true, timeout: CONNECT_TIMEOUT_MS });
        await new Promise<void>((resolve, reject) => {
          sock.once('connect', resolve);
          sock.once('error', reject);
          sock.once('timeout', () => {
            sock.destroy();
            reject(new Error(`no connection to ${host}:${port} within ${CONNECT_TIMEOUT_MS} ms`));
          });
        });
        sock.setTimeout(0);
        sock.on('error', () => sock.destroy());
        sock.write(Buffer.from(t, 'hex'));
        return sock;
      })();
      this.out.set(peer, s);
      // A socket that closes is opened again by the next send.
      s.then(
        (sock) => sock.once('close', () => this.out.get(peer) === s && this.out.delete(peer)),
        () => {},
      );
    }
    return s;
  }

  /**
   * Queues one frame on the socket without copying `data`; resolves once its bytes left this
   * process, after which the caller may change `data` again.
   */
  static write(sock: Socket, header: Uint8Array, data: Uint8Array): Promise<void> {
    const prefix = Buffer.allocUnsafe(8);
    prefix.writeUInt32LE(header.length, 0);
    prefix.writeUInt32LE(data.length, 4);
    const flushed = new Promise<void>((resolve, reject) => {
      sock.cork();
      sock.write(prefix);
      sock.write(header);
      sock.write(data, (err) => (err ? reject(err) : resolve()));
      sock.uncork();
    });
    flushed.catch(() => {});
    return flushed;
  }

  /**
   * Enters `generation`: closes the sockets this partition opened and those it accepted for an
   * older generation, and forgets the tickets of older generations (a peer that heard of the new
   * generation first may already hold one for it).
   */
  reset(generation: number): void {
    for (const [t, g] of this.grants) {
      if (g.generation < generation) {
        clearTimeout(g.timer);
        this.grants.delete(t);
      }
    }
    for (const [s, g] of this.accepted) if (g < generation) s.destroy();
    for (const s of this.out.values()) s.then((sock) => sock.destroy()).catch(() => {});
    this.out.clear();
  }

  /** Hands the data of a delivered frame back for reuse, once nothing reads it any more. */
  recycle(data: Uint8Array): void {
    this.pool.give(data);
  }

  /** Stops listening and closes everything. */
  close(): void {
    this.reset(Number.MAX_SAFE_INTEGER);
    this.pool.clear();
    this.server?.close();
  }
}
