import type { NatsConnection } from '@nats-io/nats-core';
import { Svcm } from '@nats-io/services';

/**
 * The NATS micro-services API (`@nats-io/services`) on a connection of this package's NATS client:
 * `microServices(nc).client()` lists, pings and reads the stats of a run's partitions.
 *
 * `@nats-io/services` has only prereleases, and its newest pins an older `@nats-io/nats-core`
 * than the client this package uses, so `new Svcm(nc)` does not type-check in a project that
 * installs this package (both connection types are the same object at run time; only their
 * declarations differ). This is the one place that bridges the two.
 */
export function microServices(nc: NatsConnection): Svcm {
  return new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]);
}
