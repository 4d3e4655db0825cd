/**
 * The direct path of collectives: plain TCP sockets between partitions, one per direction (the
 * connecting partition only writes, the accepting one only reads). A socket is accepted as
 * partition A only when the first bytes on it are a one-time ticket this partition gave A over
 * NATS (where the subject proves who asked); anything else is closed without a byte in return.
 * Frames are length-prefixed: a protocol header (a `coll` message without its bytes) and the raw
 * bytes, written as they are (no copy, no per-element work). On a TLS bus the sockets speak TLS,
 * both ends verified against the membership (see {@link DirectLinks.secure}).
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { fingerprintOf, type DirectIdentity } from '../../security/direct-tls.js';
import { BufferPool } from './buffer-pool.js';
import { FrameReader } from './frame-reader.js';

/** Bytes of a ticket on the socket (it travels as 64 hex digits in `coll-ticket`). */
export const TICKET_BYTES = 32;
/** How long a ticket may wait to be used. */
const TICKET_TTL_MS = 30_000;
/**
 * How long an accepted socket may take to present its ticket. A peer writes it right after
 * connecting, so this only has to outlast a busy event loop; an idle stranger holds a file
 * descriptor no longer than this.
 */
export const TICKET_WAIT_MS = 5_000;
/**
 * Sockets waiting for their ticket at once, in all and from one address (peers on one machine
 * share an address). A new socket beyond either pushes out the one waiting longest: a peer's waits
 * for milliseconds, so what goes is a stranger's, and a flood cannot keep peers out.
 */
export const MAX_WAITING_SOCKETS = 64;
export const MAX_WAITING_PER_ADDRESS = 32;
/** Sockets accepted with a ticket from one peer at once (one per generation, and the previous one while it closes); a newer one closes the oldest. */
export const MAX_ACCEPTED_PER_PEER = 2;
/** Tickets waiting to be used for one peer (it asks once per generation); a newer one pushes out its oldest. */
const MAX_GRANTS_PER_PEER = 4;
/** How long opening a socket to a peer may take before the peer is sent to over NATS instead. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Tickets waiting to be used at once, for all peers. */
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

/** The fingerprint a member announced for its attempt (`undefined`: none, or not a member); waits a little for a membership this partition has not heard of yet. */
export type CertOf = (from: number, attempt: number) => Promise<string | undefined>;

/** What an accepted socket delivers: one frame from partition `from` (attempt `attempt`). */
export type FrameHandler = (from: number, attempt: number, header: Uint8Array, data: Uint8Array) => void;

/** One partition's end of the direct path: the listening socket, the tickets it gave, the sockets it opened. */
export class DirectLinks {
  private server: Server | undefined;
  private readonly grants = new Map<string, Grant>();
  /** Accepted sockets and the generation their ticket was for. */
  private readonly accepted = new Map<Socket, number>();
  /** Accepted sockets by peer, oldest first. */
  private readonly acceptedFrom = new Map<number, Socket[]>();
  /** Sockets waiting for their ticket, oldest first, each with what refuses it; and by address. */
  private readonly waiting = new Map<Socket, () => void>();
  private readonly waitingFrom = new Map<string, Set<Socket>>();
  /** Outgoing sockets by peer, each for one generation. */
  private readonly out = new Map<number, Promise<Socket>>();
  private readonly pool = new BufferPool(POOL_BYTES);
  /** TLS on every socket, once {@link secure} was called. */
  private tls: { context: SecureContext; certOf: CertOf } | undefined;
  /**
   * @param onFrame what an accepted socket delivers
   * @param onRefused a socket was closed before it presented a valid, unused ticket (a stranger, a replay, garbage)
   */
  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onRefused: () => void,
  ) {}

  /** Starts listening on `host` (an ephemeral port) for `peers` peers; resolves with the port. */
  async listen(host: string, peers: number): Promise<number> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    // A backstop under the caps below (sockets just refused may not have closed yet): the process's file descriptors are not the port's to spend.
    server.maxConnections = 2 * MAX_WAITING_SOCKETS + MAX_ACCEPTED_PER_PEER * peers;
    server.on('drop', () => this.onRefused());
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

  /**
   * Makes every socket speak TLS (1.3) with this attempt's own certificate, call before
   * {@link listen}. The certificates are self-signed, one per attempt, so no CA could vouch for
   * them and Node's chain check would refuse every one: it is off (`rejectUnauthorized: false`)
   * and replaced by pinning what the membership says. The connecting side checks the server's
   * certificate against the fingerprint its member announced before it sends its ticket (an
   * impostor learns nothing); the accepting side asks for a client certificate and takes a ticket
   * only from the certificate its member announced (`certOf`), so a ticket alone no longer lets in.
   */
  secure(identity: DirectIdentity, certOf: CertOf): void {
    // AES-128-GCM: the fastest suite with AES instructions, and both ends are ours.
    const context = createSecureContext({ cert: identity.certPem, key: identity.keyPem, minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' });
    this.tls = { context, certOf };
  }

  /** A new one-time ticket for partition `from`'s attempt `attempt` in `generation`. */
  grant(from: number, attempt: number, generation: number): string {
    // A peer asking for many pushes out its own oldest, never another peer's.
    const own = [...this.grants].filter(([, g]) => g.from === from);
    const oldest = own.length >= MAX_GRANTS_PER_PEER ? own[0] : this.grants.size >= MAX_GRANTS ? this.grants.entries().next().value : undefined;
    if (oldest) {
      clearTimeout(oldest[1].timer);
      this.grants.delete(oldest[0]);
    }
    const ticket = randomBytes(TICKET_BYTES).toString('hex');
    const timer = setTimeout(() => this.grants.delete(ticket), TICKET_TTL_MS);
    timer.unref();
    this.grants.set(ticket, { from, attempt, generation, timer });
    return ticket;
  }

  private accept(raw: Socket): void {
    const address = raw.remoteAddress ?? '';
    const tls = this.tls;
    // On TLS the ticket is read inside the session: the handshake counts against the same wait.
    const s = tls ? new TLSSocket(raw, { isServer: true, secureContext: tls.context, requestCert: true, rejectUnauthorized: false }) : raw;
    if (s !== raw) {
      raw.on('error', () => raw.destroy());
      raw.once('close', () => s.destroy());
    }
    // Nothing is ever written back: a stranger learns nothing but that the port is open.
    const refuse = (): void => {
      if (!this.waiting.has(s)) return;
      this.stopWaiting(s, address);
      clearTimeout(wait);
      this.onRefused();
      s.destroy();
    };
    this.startWaiting(s, address, refuse);
    // Data that came in time is read before the socket is refused: the timer fires before a busy loop polls its sockets.
    const wait = setTimeout(() => setImmediate(refuse), TICKET_WAIT_MS);
    wait.unref();
    let head = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    s.once('close', refuse);
    const admit = (g: Grant): void => {
      this.stopWaiting(s, address);
      clearTimeout(wait);
      this.keepAccepted(s, g.from, g.generation);
      const reader = new FrameReader(this.pool);
      const feed = (c: Buffer): void => {
        const frames = reader.push(c);
        if (!frames) return void s.destroy();
        for (const f of frames) this.onFrame(g.from, g.attempt, f.header, f.data);
      };
      s.on('data', feed);
      if (head.length > TICKET_BYTES) feed(head.subarray(TICKET_BYTES));
    };
    const onTicket = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < TICKET_BYTES) return;
      s.off('data', onTicket);
      const ticket = head.subarray(0, TICKET_BYTES).toString('hex');
      const g = this.grants.get(ticket);
      if (!g) return refuse();
      // One use only: a replayed ticket finds nothing.
      this.grants.delete(ticket);
      clearTimeout(g.timer);
      if (!tls) return admit(g);
      // The ticket's holder must also be the member it was given to: the certificate it showed is the one that member announced.
      const shown = fingerprintOf((s as TLSSocket).getPeerCertificate());
      if (!shown) return refuse();
      s.pause();
      void tls.certOf(g.from, g.attempt).then(
        (announced) => {
          // Refused meanwhile (it closed, or its time to present a ticket ran out).
          if (!this.waiting.has(s)) return;
          if (shown !== announced) return refuse();
          admit(g);
          s.resume();
        },
        () => refuse(),
      );
    };
    s.on('data', onTicket);
  }

  /** Counts `s` as waiting for its ticket, pushing out the socket waiting longest when the caps are reached. */
  private startWaiting(s: Socket, address: string, refuse: () => void): void {
    let same = this.waitingFrom.get(address);
    if (!same) this.waitingFrom.set(address, (same = new Set()));
    if (same.size >= MAX_WAITING_PER_ADDRESS) this.waiting.get(same.values().next().value!)!();
    if (this.waiting.size >= MAX_WAITING_SOCKETS) this.waiting.values().next().value!();
    this.waiting.set(s, refuse);
    // Pushing out may have emptied and dropped the address's set.
    if (!this.waitingFrom.has(address)) this.waitingFrom.set(address, same);
    same.add(s);
  }

  private stopWaiting(s: Socket, address: string): void {
    this.waiting.delete(s);
    const same = this.waitingFrom.get(address);
    same?.delete(s);
    if (same?.size === 0) this.waitingFrom.delete(address);
  }

  /** Keeps an accepted socket of peer `from`, closing its oldest beyond {@link MAX_ACCEPTED_PER_PEER}. */
  private keepAccepted(s: Socket, from: number, generation: number): void {
    this.accepted.set(s, generation);
    let mine = this.acceptedFrom.get(from);
    if (!mine) this.acceptedFrom.set(from, (mine = []));
    mine.push(s);
    s.once('close', () => {
      this.accepted.delete(s);
      const list = this.acceptedFrom.get(from);
      const at = list?.indexOf(s) ?? -1;
      if (at >= 0) list!.splice(at, 1);
      if (list?.length === 0) this.acceptedFrom.delete(from);
    });
    while (mine.length > MAX_ACCEPTED_PER_PEER) mine.shift()!.destroy();
  }

  /**
   * The socket to `peer` for this generation, opened with `ticket()` on first use. One that could
   * not be opened stays failed for the generation (the caller falls back to NATS, not retrying per chunk).
   */
  socketTo(peer: number, host: string, port: number, ticket: () => Promise<string>, cert?: string): Promise<Socket> {
    let s = this.out.get(peer);
    if (!s) {
      s = (async () => {
        const tls = this.tls;
        // Never in the clear to a peer that announced no certificate while this partition speaks TLS.
        if (tls && !cert) throw new Error(`partition ${peer} announced no certificate for its direct socket`);
        const t = await ticket();
        const sock = tls
          ? connectTls({ host, port, secureContext: tls.context, rejectUnauthorized: false, timeout: CONNECT_TIMEOUT_MS })
          : connect({ host, port, noDelay: true, timeout: CONNECT_TIMEOUT_MS });
        await new Promise<void>((resolve, reject) => {
          if (tls)
            sock.once('secureConnect', () => {
              // The pin (see `secure`): the ticket goes only to the certificate the member announced.
              if (fingerprintOf((sock as TLSSocket).getPeerCertificate()) === cert) return resolve();
              sock.destroy();
              reject(new Error(`partition ${peer} at ${host}:${port} showed a certificate other than the one it announced`));
            });
          else sock.once('connect', resolve);
          sock.once('error', reject);
          sock.once('timeout', () => {
            sock.destroy();
            reject(new Error(`no connection to ${host}:${port} within ${CONNECT_TIMEOUT_MS} ms`));
          });
        });
        sock.setTimeout(0);
        if (tls) sock.setNoDelay(true);
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
