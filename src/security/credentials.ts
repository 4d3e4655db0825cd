import { createUser } from '@nats-io/nkeys';
import { identityOf, type Permissions, type Role, type StreamsAccess } from './permissions.js';

/** One user of a private nats-server: its public nkey (what the server stores) and its seed (the secret). */
export interface NkeyUser {
  /** Public key, `U…`: the only part written to the server's configuration. */
  publicKey: string;
  /** Seed, `SU…`: the secret that signs the server's nonce. Never logged or sent on the bus. */
  seed: string;
  permissions: Permissions;
  /** Prefix of this identity's reply inboxes. */
  inboxPrefix: string;
}

/** Makes a fresh nkey user with these permissions. */
export function nkeyUser(permissions: Permissions, inboxPrefix: string): NkeyUser {
  const kp = createUser();
  const user: NkeyUser = { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()), permissions, inboxPrefix };
  kp.clear();
  return user;
}

/** The nkey users of one cluster run, created together when the run starts (the server never reloads). */
export interface RunCredentials {
  driver: NkeyUser;
  partitions: NkeyUser[];
  runner: NkeyUser;
  client: NkeyUser;
  /** May publish updates and nothing else (a run with live updates only). */
  publisher?: NkeyUser;
}

/** Creates the users of cluster run `clusterId` with `partitions` partitions. */
export function runCredentials(
  clusterId: string,
  partitions: number,
  permissionsFor: (clusterId: string, role: Role, streams?: StreamsAccess) => Permissions,
  inbox: (identity: string) => string,
  streams: StreamsAccess = {},
): RunCredentials {
  const make = (role: Role): NkeyUser => nkeyUser(permissionsFor(clusterId, role, streams), inbox(identityOf(role)));
  return {
    driver: make({ kind: 'driver' }),
    partitions: Array.from({ length: partitions }, (_, partition) => make({ kind: 'partition', partition })),
    runner: make({ kind: 'runner' }),
    client: make({ kind: 'client' }),
    ...(streams.updates ? { publisher: make({ kind: 'publisher' }) } : {}),
  };
}

/** Every user of a credential set, for the server's configuration. */
export function allUsers(c: RunCredentials): NkeyUser[] {
  return [c.driver, ...c.partitions, c.runner, c.client, ...(c.publisher ? [c.publisher] : [])];
}
