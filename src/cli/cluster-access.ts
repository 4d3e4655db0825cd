/**
 * How `sps status` and `sps request` reach a running cluster: its NATS URL, its id, and (on the
 * run's private bus) the client identity `sps run` wrote to a credentials file. The client may ask
 * the supervisor for the membership and call endpoints, nothing else (src/security/permissions.ts).
 * Secrets travel only in that file (mode 0600), never in argv or on the terminal.
 */
import { readFileSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/nats-core';
import { parseCredentialsFile, type CredentialsFile } from '../driver/credentials-file.js';
import { InvalidOptionError, SparkPartitionServerError } from '../errors.js';
import { encode } from '../protocol/codec.js';
import { decodeMembers } from '../protocol/messages.js';
import { subjectsFor } from '../protocol/subjects.js';
import type { Member } from '../protocol/types.js';
import type { BusAccess } from '../security/bus-access.js';
import { connectBus, requestEndpoint, unknownEndpoint } from '../transport/bus.js';
import { UsageError } from './run-options.js';

/** What a client needs to reach one cluster run. */
export interface ClusterAddress {
  clusterId: string;
  access: BusAccess;
}

/** Flags of `sps status` / `sps request` that say where the cluster is. */
export interface AccessFlags {
  credentialsFile?: string;
  nats?: string;
  cluster?: string;
  natsCreds?: string;
  natsCa?: string;
}

function readText(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The cluster's address from a credentials file, or from `--nats` and `--cluster` (those override the file's). */
export function clusterAddress(flags: AccessFlags): ClusterAddress {
  let fromFile: Partial<CredentialsFile> = {};
  const file = flags.credentialsFile;
  if (file !== undefined) {
    try {
      fromFile = parseCredentialsFile(readText('credentials-file', file), `--credentials-file "${file}"`);
    } catch (err) {
      if (err instanceof InvalidOptionError) throw new UsageError(`--credentials-file: "${file}" ${err.message.slice(err.message.indexOf(': ') + 2)}`);
      throw err;
    }
  }
  const { clusterId: idInFile, ...accessInFile } = fromFile;
  const clusterId = flags.cluster ?? idInFile;
  const url = flags.nats ?? accessInFile.url;
  if (!clusterId || !url) {
    const missing = [!clusterId && 'the cluster id ("clusterId" in the file, or --cluster)', !url && 'the NATS URL ("url" in the file, or --nats)'].filter(
      Boolean,
    );
    throw new UsageError(
      `say where the cluster is: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing; give --credentials-file <file written by sps run ` +
        `or cluster.writeCredentials()>, or --nats <url> and --cluster <id>`,
    );
  }
  const access: BusAccess = { ...accessInFile, url };
  if (flags.natsCreds !== undefined) access.auth = { creds: readText('nats-creds', flags.natsCreds) };
  if (flags.natsCa !== undefined) access.tls = { ...access.tls, ca: readText('nats-ca', flags.natsCa) };
  // A client gives up quickly on a bus that went away: it asks once, it does not wait for a restart.
  access.reconnectWindowMs = 1000;
  return { clusterId, access };
}

/** A connection to one cluster run as its client. */
export class ClusterClient {
  private readonly subjects;
  private constructor(
    private readonly nc: NatsConnection,
    readonly clusterId: string,
  ) {
    this.subjects = subjectsFor(clusterId);
  }

  static async connect(address: ClusterAddress): Promise<ClusterClient> {
    const subjects = subjectsFor(address.clusterId);
    return new ClusterClient(await connectBus(address.access, `sps-cli ${subjects.prefix}`), address.clusterId);
  }

  /** The supervisor's membership view. */
  async members(timeoutMs: number): Promise<{ epoch: number; members: Member[] }> {
    const subject = this.subjects.membersGet;
    const reply = await this.nc.request(subject, encode('members-get', {}), { timeout: timeoutMs }).catch((err: Error) => {
      throw new SparkPartitionServerError('SPS_NO_SUPERVISOR', `cluster ${this.clusterId} did not answer ${subject}: ${err.message}`, { cause: err });
    });
    return decodeMembers(subject, reply.data);
  }

  /** Calls `endpoint` of each given partition's current attempt, as in `view`; failures are per partition. */
  async request(
    view: Member[],
    partitions: number[],
    endpoint: string,
    payload: unknown,
    timeoutMs: number,
  ): Promise<{ partition: number; ok: boolean; value?: unknown; error?: { code: string; message: string } }[]> {
    return Promise.all(
      partitions.map(async (partition) => {
        const m = view.find((x) => x.partition === partition);
        if (!m || m.state !== 'serving') {
          const message = m ? `partition ${partition} is ${m.state} (attempt ${m.attempt})` : `partition ${partition} is not in the membership`;
          return { partition, ok: false, error: { code: m ? 'SPS_NOT_SERVING' : 'SPS_UNKNOWN_PARTITION', message } };
        }
        const unknown = unknownEndpoint(m, endpoint);
        if (unknown) return { partition, ok: false, error: unknown };
        const reply = await requestEndpoint(this.nc, this.subjects.endpoint(partition, m.attempt, endpoint), payload, timeoutMs);
        return reply.ok ? { partition, ok: true, value: reply.body } : { partition, ok: false, error: reply.error };
      }),
    );
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => {});
  }
}
