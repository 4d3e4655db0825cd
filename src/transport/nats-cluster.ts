import { startNatsServer, type NatsServerOptions, type NatsServerProcess } from './nats-server.js';

/** A cluster of nats-server nodes this library started (tests and benchmarks of a user-run bus). */
export interface NatsClusterProcess {
  readonly nodes: readonly NatsServerProcess[];
  /** Every node's client URL, comma-separated: what `natsUrl` is given. */
  readonly url: string;
  /** Stops every node still running. */
  stop(): Promise<void>;
}

/**
 * Starts `size` nodes of one cluster on loopback, each routed to every node started before it (the
 * routes' gossip completes the mesh), all with the same options (auth, JetStream, …). A node that
 * fails to start stops the ones already running.
 */
export async function startNatsCluster(size: number, options: Omit<NatsServerOptions, 'cluster' | 'serverName' | 'port'> = {}): Promise<NatsClusterProcess> {
  const name = `sps-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const nodes: NatsServerProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < size; i++) {
      const routes = nodes.map((n) => `nats-route://127.0.0.1:${n.routePort}`);
      nodes.push(await startNatsServer({ ...options, serverName: `${name}-n${i}`, cluster: { name, routes } }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, url: nodes.map((n) => n.url).join(','), stop };
}
