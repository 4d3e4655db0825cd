/**
 * Plays a hosted runner that is already loaded: reads `{appId, bus}` (a HostedRunner) as JSON on
 * stdin, connects to the application's bus with the runner's access, publishes its `ready` and
 * waits until the server has taken it. Run synchronously by a test, while the driver's event loop
 * is blocked.
 */
import { readFileSync } from 'node:fs';
import { encode } from '../../src/protocol/codec.js';
import { subjectsFor } from '../../src/protocol/subjects.js';
import type { BusAccess } from '../../src/security/bus-access.js';
import { connectBus } from '../../src/transport/bus.js';

const { appId, bus } = JSON.parse(readFileSync(0, 'utf8')) as { appId: string; bus: BusAccess };
const nc = await connectBus(bus, `sps-${appId}-test-runner`);
nc.publish(
  subjectsFor(appId).spark('ready'),
  encode('ready', { master: 'local[2]', sparkVersion: 'test', applicationId: 'local-test', slots: 2, pid: process.pid }),
);
await nc.flush();
await nc.close();
