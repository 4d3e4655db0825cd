import test from 'ava';
import { type HttpChoice } from '../src/index.js';
import { uwsUnavailable } from '../src/transport/uws-load.js';
import { sharedNats, TEST_SERVER } from './helpers/harness.js';
import { openWs } from './helpers/ws-client.js';
import { withCluster } from './helpers/with-cluster.js';

const nats = sharedNats();
test.after.always(() => nats.stop());

/** Each test runs on both HTTP servers; the native one only where a uWebSockets.js binary loads. */
const SERVERS: HttpChoice[] = ['uws', 'node'];
const serial = (http: HttpChoice) => (http === 'uws' && uwsUnavailable() ? test.serial.skip : test.serial);

for (const http of SERVERS) {
  serial(http)(`${http}: WebSocket routes under /app echo text and binary, and a throw closes with 1011`, async (t) => {
    const server = await nats.get();
    await withCluster(t, { server: TEST_SERVER, data: [1, 2, 3], partitions: 1, natsUrl: server.url, log: false, http }, async (cluster) => {
      const { host, port } = cluster.hosts.get(0)!;
      const a = await openWs(`ws://${host}:${port}/app/echo`);
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
  });

  serial(http)(`${http}: open WebSockets are closed with 1001 when the partition shuts down`, async (t) => {
    const server = await nats.get();
    await withCluster(t, { server: TEST_SERVER, data: [1], partitions: 1, natsUrl: server.url, log: false, http }, async (cluster) => {
      const { host, port } = cluster.hosts.get(0)!;
      const a = await openWs(`ws://${host}:${port}/app/echo`);
      t.teardown(() => a.ws.terminate());
      a.ws.send('still here');
      t.is(await a.next(), 'p0:still here');
      await cluster.stop();
      t.is(await a.closed, 1001);
      t.is(cluster.result().get(0)?.length, 1);
    });
  });
}
