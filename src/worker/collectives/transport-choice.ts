/**
 * Which way a collective call's data travels: through nats-server, or over the partitions' own
 * direct sockets. Pure: the choice depends only on what is asked, the value's size and the group.
 */

/** How a collective call's data travels: see `CollectiveOptions.transport`. */
export type CollectiveTransport = 'nats' | 'direct' | 'auto';

/** The transports, for checking options. */
export const COLLECTIVE_TRANSPORTS: readonly CollectiveTransport[] = ['nats', 'direct', 'auto'];

/** In a group larger than {@link DIRECT_ALL_MAX_PARTITIONS}, values (or blocks of one) from this many bytes up take the direct path under `transport: 'auto'`. */
export const DIRECT_MIN_BYTES = 64 * 1024;
/**
 * Groups of up to this many partitions send everything directly under `transport: 'auto'`: a
 * barrier of 2 or 4 partitions took 0.2–0.3 / 0.6 ms direct against 0.5 / 0.9 ms through
 * nats-server (one hop less), and 8 were even. In larger groups one publish that nats-server fans
 * out beats n−1 socket writes per small value.
 */
export const DIRECT_ALL_MAX_PARTITIONS = 8;

/**
 * Whether a chunk of a value of `bytes` bytes goes over the direct sockets in a group of
 * `partitions`. `clearOnTlsBus`: the bus speaks TLS but the direct sockets do not (a partition
 * that could not secure them); `'auto'` then keeps everything on NATS, since a user who asked for
 * TLS did not ask for data in the clear. (On a TLS bus the direct sockets speak TLS too.)
 */
export function sendsDirect(transport: CollectiveTransport, bytes: number, partitions: number, clearOnTlsBus = false): boolean {
  if (transport !== 'auto') return transport === 'direct';
  if (clearOnTlsBus) return false;
  return partitions <= DIRECT_ALL_MAX_PARTITIONS || bytes >= DIRECT_MIN_BYTES;
}
