import { createSocket } from 'node:dgram';

/**
 * The address of the host this worker runs on, as the rest of the cluster reaches it:
 * `SPARK_LOCAL_IP` when the executor has one (Spark's own choice of address), otherwise the local
 * address of the interface that routes to the bus (found by connecting a UDP socket, which sends
 * nothing).
 */
export async function executorAddress(busUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.SPARK_LOCAL_IP) return env.SPARK_LOCAL_IP;
  const first = busUrl.split(',')[0]!;
  const u = new URL(first.includes('://') ? first : `nats://${first}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return localAddressToward(host, Number(u.port || 4222));
}

function localAddressToward(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.connect(port, host, () => {
      const { address } = socket.address();
      socket.close();
      resolve(address);
    });
  });
}
