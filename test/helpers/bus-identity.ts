import { errors } from '@nats-io/nats-core';
import type { BusAccess } from '../../src/index.js';
import { connectBus, type NatsConnection } from '../../src/transport/bus.js';

/** Connects as one identity and records every permission violation the server reports to it. */
export async function as(access: BusAccess, name: string): Promise<{ nc: NatsConnection; refused: string[] }> {
  const nc = await connectBus(access, name);
  const refused: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error instanceof errors.PermissionViolationError) refused.push(`${s.error.operation} ${s.error.subject}`);
    }
  })();
  return { nc, refused };
}
