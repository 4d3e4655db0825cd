import { abandonable, requestAll, type CallOptions, type PartitionReply } from '../protocol/call-options.js';
import { RequestError, SparkPartitionServerError } from '../errors.js';
import { encode } from '../protocol/codec.js';
import { decodeMembers, decodeMembersDelta } from '../protocol/messages.js';
import type { Subjects } from '../protocol/subjects.js';
import type { Member } from '../protocol/types.js';
import { requestEndpoint, unknownEndpoint, unwrapReply, type NatsConnection } from '../transport/bus.js';
import { MembershipView } from '../protocol/membership.js';
import { Changes, waitFor } from '../protocol/wait-for.js';

/** Where a partition's peer view lives, and what it tells. */
export interface PeersOptions {
  nc: NatsConnection;
  subjects: Subjects;
  partition: number;
  partitions: number;
  requestTimeoutMs: number;
  /** The view changed: its members and the cluster's generation. */
  onView(generation: number, members: Member[]): void;
  /** A message on `ctl.members` did not decode. */
  onMalformed(): void;
}

/**
 * A partition's view of its peers: follows the membership deltas the supervisor publishes (asking
 * for the whole view after a gap), waits for every peer to serve, and calls peers' endpoints.
 */
export class Peers {
  private readonly view = new MembershipView();
  private current: Member[] = [];
  private readonly changes = new Changes();
  private fetching = false;

  constructor(private readonly o: PeersOptions) {}

  /** The latest members, by partition. */
  get members(): Member[] {
    return this.current;
  }

  /** Subscribes to the membership; call before registering, so no delta after the registration is missed. */
  listen(): void {
    this.o.nc.subscribe(this.o.subjects.members, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const outcome = this.view.apply(decodeMembersDelta(msg.subject, msg.data));
          if (outcome === 'applied') this.changed();
          else if (outcome === 'gap') void this.fetchWhole();
        } catch {
          this.o.onMalformed();
        }
      },
    });
  }

  /** Takes a whole view (the registration's answer, or the reply to a fetch). */
  setWhole(epoch: number, generation: number, members: Member[]): void {
    if (this.view.replace(epoch, generation, members)) this.changed();
  }

  /** Resolves with the members once every partition serves; rejects after `timeoutMs`, or with the signal's reason when it aborts. */
  waitForPeers(opts: CallOptions = {}): Promise<Member[]> {
    const { timeoutMs = 30_000, signal } = opts;
    const serving = (): Member[] | undefined => (this.current.filter((m) => m.state === 'serving').length >= this.o.partitions ? this.current : undefined);
    return waitFor(serving, {
      changes: this.changes,
      timeoutMs,
      signal,
      onTimeout: () =>
        new SparkPartitionServerError('SPS_PEERS_TIMEOUT', `partition ${this.o.partition}: not all ${this.o.partitions} peers serving within ${timeoutMs} ms`),
    });
  }

  /** Calls an endpoint of a peer's current attempt; `signal` abandons the call (it rejects with the signal's reason). */
  async request<T>(target: number, endpoint: string, payload?: unknown, opts: CallOptions = {}): Promise<T> {
    opts.signal?.throwIfAborted();
    const m = this.current.find((x) => x.partition === target);
    if (!m) throw new RequestError('SPS_UNKNOWN_PARTITION', target, endpoint, `no member in the membership view seen by partition ${this.o.partition}`);
    const unknown = unknownEndpoint(m, endpoint);
    if (unknown) throw new RequestError(unknown.code, target, endpoint, unknown.message);
    const subject = this.o.subjects.endpoint(target, m.attempt, endpoint);
    const reply = await abandonable(requestEndpoint(this.o.nc, subject, payload, opts.timeoutMs ?? this.o.requestTimeoutMs), opts.signal);
    return unwrapReply(reply, target, endpoint) as T;
  }

  /** Calls one endpoint of every partition at once; each entry says how its call went. An aborted `signal` rejects the whole call. */
  async requestAll<T>(endpoint: string, payload?: unknown, opts: CallOptions = {}): Promise<Map<number, PartitionReply<T>>> {
    const { timeoutMs } = opts;
    return requestAll(this.o.partitions, (p) => this.request<T>(p, endpoint, payload, { timeoutMs }), opts.signal);
  }

  private changed(): void {
    this.current = this.view.members;
    this.o.onView(this.view.generation, this.current);
    this.changes.notify();
  }

  /** A delta showed that a change was missed: the whole view, one fetch at a time. */
  private async fetchWhole(): Promise<void> {
    if (this.fetching || this.o.nc.isClosed()) return;
    this.fetching = true;
    try {
      const msg = await this.o.nc.request(this.o.subjects.membersGet, encode('members-get', {}), { timeout: this.o.requestTimeoutMs });
      const v = decodeMembers(msg.subject, msg.data);
      this.setWhole(v.epoch, v.generation, v.members);
    } catch {
      // The next delta shows the gap again and asks again.
    } finally {
      this.fetching = false;
    }
  }
}
