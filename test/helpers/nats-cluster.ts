import { startNatsServer, type NatsServerOptions, type NatsServerProcess } from '../../src/transport/nats-server.js';
import { createServer, type Server } from 'node:net';

/** A cluster of nats-server nodes this library started (tests and benchmarks of a user-run bus). */
export interface NatsClusterProcess {
  readonly nodes: readonly NatsServerProcess[];
  /** Every node's client URL, comma-separated: what `natsUrl` is given. */
  readonly url: string;
  /** Stops every node still running. */
  stop(): Promise<void>;
}

/** `n` distinct free loopback ports: all held open at once, then released. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** A node failed because a route port chosen for it was taken between choosing and binding. */
const PORT_TAKEN = /Error listening on router port: \d+ .*address already in use/;

/**
 * Starts `size` nodes of one cluster on loopback, each routed to every other (their route ports
 * chosen first: a JetStream cluster needs its routes configured), all with the same options (auth,
 * JetStream, …). A node that fails to start stops the others. Route ports are free when chosen but
 * not held until nats-server binds them, and any process on the machine may take one meanwhile:
 * the cluster is then started again on other ports (at most 4 times in all).
 */
export async function startNatsCluster(size: number, options: Omit<NatsServerOptions, 'cluster' | 'serverName' | 'port'> = {}): Promise<NatsClusterProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(size, options);
    } catch (err) {
      if (attempt >= 4 || !PORT_TAKEN.test(err instanceof Error ? err.message : String(err))) throw err;
    }
  }
}

async function startOnce(size: number, options: Omit<NatsServerOptions, 'cluster' | 'serverName' | 'port'>): Promise<NatsClusterProcess> {
  const name = `sps-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const nodes: NatsServerProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const ports = await freePorts(size);
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p}`);
    const started = await Promise.allSettled(
      ports.map((port, i) => startNatsServer({ ...options, serverName: `${name}-n${i}`, cluster: { name, port, routes: routes.filter((_, j) => j !== i) } })),
    );
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, url: nodes.map((n) => n.url).join(','), stop };
}

/**
 * `p`, or its error with every node's recent warnings and errors appended: a node tells a client
 * some failures (a stream it could not make) only as a fixed sentence, and their cause only in its log.
 */
export async function withNodeProblems<T>(nats: NatsClusterProcess, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const lines = nats.nodes.flatMap((n, i) => n.problems().map((line) => `node ${i}: ${line}`));
    if (err instanceof Error) err.message += `\nthe nodes' warnings and errors:\n${lines.join('\n') || '(none)'}`;
    throw err;
  }
}
