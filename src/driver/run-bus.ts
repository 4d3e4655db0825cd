import { readFile } from 'node:fs/promises';
import { InvalidOptionError } from '../errors.js';
import type { NatsAccountOption, NatsAuthOption, ResolvedOptions } from './options.js';
import { keyMapping, subjectsFor } from '../protocol/subjects.js';
import type { BusAccess, BusAuth, BusTls } from '../security/bus-access.js';
import { allUsers, runCredentials, type NkeyUser } from '../security/credentials.js';
import { permissionsFor } from '../security/permissions.js';
import { checkAccountSigner, userCreds } from '../security/nats-accounts.js';
import type { BusNetwork } from './launch/launcher.js';
import { startNatsServer, type NatsServerProcess } from '../transport/nats-server.js';
import { generateTlsMaterial } from '../transport/tls-certs.js';
import { keepNatsServerUp } from './nats-restarts.js';

/** The bus of one cluster run, and how each identity reaches it. */
export interface RunBus {
  /** The private nats-server, when the run started one (its `pid` is the current process's, after a restart too). */
  nats?: NatsServerProcess;
  /** Resolves with why, once the private nats-server is gone for good (it kept dying); never after stop(). */
  lost?: Promise<string>;
  url: string;
  driver: BusAccess;
  runner: BusAccess;
  /** An identity that may only call endpoints and read the membership (private server only). */
  client?: BusAccess;
  /** An identity that may only publish updates (private server of a run with `updates` only). */
  publisher?: BusAccess;
  busFor(partition: number): BusAccess;
  stop(): Promise<void>;
}

/** Bounds of the private server's JetStream store (a run with live updates): the stream's own limits stay below. */
const UPDATES_STORE = { maxFileBytes: 8 * 1024 ** 3, maxMemoryBytes: 64 * 1024 ** 2 };

const LOOPBACK: BusNetwork = { local: true, listen: '127.0.0.1', advertise: '127.0.0.1' };

function splitHostPort(s: string): { host: string; port?: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(s);
  if (!m || (m[1]!.includes(':') && !s.startsWith('['))) return { host: s };
  return { host: m[1]!, port: m[2] ? Number(m[2]) : undefined };
}

async function readOption(option: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidOptionError(option, `cannot read ${path}: ${(err as Error).message}`);
  }
}

async function userRunAuth(a: NatsAuthOption | undefined): Promise<BusAuth | undefined> {
  if (!a) return undefined;
  if ('credsFile' in a) return { creds: await readOption('natsAuth.credsFile', a.credsFile) };
  return a;
}

async function userRunTls(t: ResolvedOptions<unknown, unknown>['natsTls']): Promise<BusTls | undefined> {
  if (!t) return undefined;
  // Contents, not paths: workers on other hosts cannot read the driver's files.
  return {
    ...(t.caFile ? { ca: await readOption('natsTls.caFile', t.caFile) } : {}),
    ...(t.certFile ? { cert: await readOption('natsTls.certFile', t.certFile) } : {}),
    ...(t.keyFile ? { key: await readOption('natsTls.keyFile', t.keyFile) } : {}),
  };
}

/**
 * The bus of a run on a NATS cluster you run with decentralized auth: the run's nkey users, each
 * with its role's permissions, issued as user JWTs by the account's signing key (read from its file
 * here, kept only in this process). The servers know the account already: nothing changes on them.
 */
async function accountRunBus(o: ResolvedOptions<unknown, unknown>, url: string, a: Required<NatsAccountOption>, clusterId: string): Promise<RunBus> {
  const signer = { account: a.account, signingKeySeed: (await readOption('natsAccount.signingKeyFile', a.signingKeyFile)).trim() };
  checkAccountSigner(signer);
  const subjects = subjectsFor(clusterId);
  const creds = runCredentials(clusterId, o.partitions, permissionsFor, subjects.inbox, { updates: o.updates, events: o.events });
  const expires = Date.now() + a.credentialTtlMs;
  const tls = await userRunTls(o.natsTls);
  const access = async (u: NkeyUser, who: string): Promise<BusAccess> => ({
    url,
    auth: { creds: await userCreds(u, `sps-${clusterId}-${who}`, signer, expires) },
    inboxPrefix: u.inboxPrefix,
    reconnectWindowMs: o.reconnectWindowMs,
    ...(tls ? { tls } : {}),
  });
  const partitions = await Promise.all(creds.partitions.map((u, p) => access(u, `p${p}`)));
  return {
    url,
    driver: await access(creds.driver, 'driver'),
    runner: await access(creds.runner, 'runner'),
    client: await access(creds.client, 'client'),
    ...(creds.publisher ? { publisher: await access(creds.publisher, 'publisher') } : {}),
    busFor: (p) => partitions[p]!,
    stop: async () => {},
  };
}

/**
 * Sets up the bus of cluster run `clusterId`: a user-run server as configured (every identity the
 * same), or a private nats-server whose only users are the run's nkey identities, each limited to
 * its role's subjects, listening where the launcher's workers can reach it, with TLS on request.
 */
export async function startRunBus(o: ResolvedOptions<unknown, unknown>, clusterId: string, network: BusNetwork = LOOPBACK): Promise<RunBus> {
  const reconnectWindowMs = o.reconnectWindowMs;
  if (o.natsUrl && o.natsAccount) return accountRunBus(o, o.natsUrl, o.natsAccount, clusterId);
  if (o.natsUrl) {
    const access: BusAccess = { url: o.natsUrl, auth: await userRunAuth(o.natsAuth), tls: await userRunTls(o.natsTls), reconnectWindowMs };
    return { url: o.natsUrl, driver: access, runner: access, busFor: () => access, stop: async () => {} };
  }
  const subjects = subjectsFor(clusterId);
  const creds = runCredentials(clusterId, o.partitions, permissionsFor, subjects.inbox, { updates: o.updates, events: o.events });
  const listen = o.natsListen ? splitHostPort(o.natsListen) : { host: network.listen };
  const advertiseHost = o.natsListen && !network.local ? listen.host : network.advertise;
  let tls: { certPem: string; keyPem: string } | undefined;
  let ca: string | undefined;
  if (o.tls === true) {
    const advertised = o.natsAdvertiseUrl ? new URL(o.natsAdvertiseUrl).hostname.replace(/^\[|\]$/g, '') : advertiseHost;
    const names = [listen.host, advertised].filter((h) => h !== '0.0.0.0' && h !== '::');
    const m = await generateTlsMaterial({ ips: names.filter((h) => /^[\d.:a-f]+$/i.test(h)), dnsNames: names.filter((h) => !/^[\d.:a-f]+$/i.test(h)) });
    tls = { certPem: m.certPem, keyPem: m.keyPem };
    ca = m.caPem;
  } else if (o.tls) {
    tls = { certPem: await readOption('tls.certFile', o.tls.certFile), keyPem: await readOption('tls.keyFile', o.tls.keyFile) };
    ca = await readOption('tls.caFile', o.tls.caFile);
  }
  const nats = await startNatsServer({
    binary: o.natsServer,
    host: listen.host,
    port: listen.port,
    advertiseHost,
    users: allUsers(creds),
    tls,
    mappings: keyMapping(subjects, o.partitions),
    ...(o.updates || o.events ? { jetstream: UPDATES_STORE } : {}),
  });
  const kept = keepNatsServerUp(nats, (line) => o.logger.warn(line));
  const url = o.natsAdvertiseUrl ?? nats.url;
  const access = (u: NkeyUser): BusAccess => ({
    url,
    auth: { nkeySeed: u.seed },
    inboxPrefix: u.inboxPrefix,
    reconnectWindowMs,
    ...(ca ? { tls: { ca } } : {}),
  });
  return {
    nats,
    url,
    // The driver is on this machine: it may use the loopback URL when the server listens there too.
    driver: access(creds.driver),
    runner: access(creds.runner),
    client: access(creds.client),
    ...(creds.publisher ? { publisher: access(creds.publisher) } : {}),
    busFor: (p) => access(creds.partitions[p]!),
    lost: kept.lost,
    stop: () => kept.stop(),
  };
}
