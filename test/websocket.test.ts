import test from 'ava';
import WebSocket from 'ws';
import { Cluster } from '../src/index.js';
import { sharedNats, TEST_SERVER } from './helpers/harness.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

/** Opens a WebSocket and collects what it receives until it closes. */
async function open(url: string) {
  const ws = new WebSocket(url);
  const received: (string | Buffer)[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    received.push(isBinary ? data : data.toString('utf8'));
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (): Promise<string | Buffer> => {
    while (received.length === 0) await new Promise<void>((r) => waiters.push(r));
    return received.shift()!;
  };
  return { ws, next, closed };
}

test.serial('WebSocket routes under /app echo text and binary, and a throw closes with 1011', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({ server: TEST_SERVER, data: [1, 2, 3], partitions: 1, natsUrl: server.url, log: false });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const { host, port } = cluster.hosts.get(0)!;
  const a = await open(`ws://${host}:${port}/app/echo`);
  t.teardown(() => a.ws.terminate());
  a.ws.send('hello');
  t.is(await a.next(), 'p0:hello');
  a.ws.send(Buffer.from([1, 2, 3]));
  t.deepEqual(await a.next(), Buffer.from([1, 2, 3]));
  a.ws.send('count');
  t.is(await a.next(), '3');
  a.ws.send('throw');
  t.is(await a.closed, 1011);
});

test.serial('open WebSockets are closed with 1001 when the partition shuts down', async (t) => {
  const server = await nats.get();
  const cluster = new Cluster({ server: TEST_SERVER, data: [1], partitions: 1, natsUrl: server.url, log: false });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const { host, port } = cluster.hosts.get(0)!;
  const a = await open(`ws://${host}:${port}/app/echo`);
  t.teardown(() => a.ws.terminate());
  a.ws.send('still here');
  t.is(await a.next(), 'p0:still here');
  await cluster.stop();
  t.is(await a.closed, 1001);
  t.is(cluster.result().get(0)?.length, 1);
});
