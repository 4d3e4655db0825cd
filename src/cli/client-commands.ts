/**
 * `sps status` and `sps request`: a running cluster seen from outside, as its client identity.
 */
import type { Member } from '../protocol/types.js';
import { ClusterClient, clusterAddress, type AccessFlags } from './cluster-access.js';

/** Flags shared by the client commands. */
export interface ClientFlags extends AccessFlags {
  timeout: number;
}

async function withClient<T>(flags: ClientFlags, use: (client: ClusterClient) => Promise<T>): Promise<T> {
  const client = await ClusterClient.connect(clusterAddress(flags));
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

function table(members: Member[]): string {
  const rows = [
    ['partition', 'state', 'attempt', 'pid', 'address', 'endpoints'],
    ...members.map((m) => [
      String(m.partition),
      m.state,
      String(m.attempt),
      String(m.pid),
      m.port === null ? `${m.host} (NATS only)` : `http://${m.host}:${m.port}`,
      m.endpoints.join(','),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Prints the membership: a table, or with `--json` one JSON object. */
export async function statusCommand(flags: ClientFlags & { json?: boolean }): Promise<number> {
  return withClient(flags, async (client) => {
    const view = await client.members(flags.timeout);
    const members = [...view.members].sort((a, b) => a.partition - b.partition);
    if (flags.json) process.stdout.write(JSON.stringify({ clusterId: client.clusterId, epoch: view.epoch, members }) + '\n');
    else {
      const serving = members.filter((m) => m.state === 'serving').length;
      process.stdout.write(`cluster ${client.clusterId}: ${serving}/${members.length} serving (membership epoch ${view.epoch})\n${table(members)}\n`);
    }
    return 0;
  });
}

/**
 * Calls an endpoint of one partition (prints the reply's value as JSON) or of every partition in
 * the membership (`all`: one JSON line per partition, `{ partition, ok, value | error }`). Exits 1
 * when any call failed.
 */
export async function requestCommand(target: number | 'all', endpoint: string, payload: unknown, flags: ClientFlags): Promise<number> {
  return withClient(flags, async (client) => {
    const view = await client.members(flags.timeout);
    const partitions = target === 'all' ? view.members.map((m) => m.partition).sort((a, b) => a - b) : [target];
    const replies = await client.request(view.members, partitions, endpoint, payload, flags.timeout);
    if (target !== 'all') {
      const r = replies[0]!;
      if (!r.ok) {
        process.stderr.write(`sps: [${r.error!.code}] partition ${r.partition}, endpoint "${endpoint}": ${r.error!.message}\n`);
        return 1;
      }
      process.stdout.write(JSON.stringify(r.value ?? null) + '\n');
      return 0;
    }
    for (const r of replies) process.stdout.write(JSON.stringify(r) + '\n');
    return replies.every((r) => r.ok) ? 0 : 1;
  });
}
