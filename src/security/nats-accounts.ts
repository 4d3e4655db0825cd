import { createAccount, createOperator, encodeAccount, encodeOperator, encodeUser, fmtCreds, fromPublic, fromSeed, type User } from '@nats-io/jwt';
import { InvalidOptionError } from '../errors.js';
import type { NkeyUser } from './credentials.js';

/**
 * Decentralized auth (operator and account JWTs) for a NATS cluster you run: the cluster trusts one
 * account of the run's kind once, and each run then issues its own users — one per identity, each
 * with the subject permissions of the private bus — signed by the account's signing key. The
 * servers verify a user's JWT against the account they already know, so no server configuration
 * changes and no server restarts per run.
 */

/** What `sps credentials --nats-config` makes: the servers' part (public) and the secrets (seeds). */
export interface NatsAccountSetup {
  /** The account's public key (`A…`): option `natsAccount.account`. */
  account: string;
  /** nats-server configuration (JSON) to include in every node's: operator, system account, preloaded account JWTs. */
  serverConfig: Record<string, unknown>;
  /** The signing key's seed (`SA…`): the only secret the driver needs (option `natsAccount.signingKeyFile`). */
  signingKeySeed: string;
  /** The operator's and the account's own seeds: needed only to change the account later; keep them offline. */
  operatorSeed: string;
  accountSeed: string;
}

const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

/** JetStream without limits of its own (the streams of a run carry theirs), and no connection limits. */
const ACCOUNT_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/** Makes an operator, its system account and one account for runs, with a signing key. */
export async function makeNatsAccountSetup(name = 'sps'): Promise<NatsAccountSetup> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const signing = createAccount();
  const operatorJwt = await encodeOperator(`${name}-operator`, operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
  const accountJwt = await encodeAccount(name, account, { limits: ACCOUNT_LIMITS, signing_keys: [signing.getPublicKey()] }, { signer: operator });
  const setup: NatsAccountSetup = {
    account: account.getPublicKey(),
    serverConfig: {
      operator: operatorJwt,
      system_account: system.getPublicKey(),
      resolver: 'MEMORY',
      resolver_preload: { [system.getPublicKey()]: systemJwt, [account.getPublicKey()]: accountJwt },
    },
    signingKeySeed: decode(signing.getSeed()),
    operatorSeed: decode(operator.getSeed()),
    accountSeed: decode(account.getSeed()),
  };
  for (const kp of [operator, system, account, signing]) kp.clear();
  return setup;
}

/** The account and signing key a run issues its users with. */
export interface AccountSigner {
  account: string;
  signingKeySeed: string;
}

/** Checks that `s` holds an account's public key and an account signing key's seed; errors never show the seed. */
export function checkAccountSigner(s: AccountSigner): void {
  try {
    fromPublic(s.account);
  } catch {
    throw new InvalidOptionError('natsAccount.account', 'must be an account public key ("A…")');
  }
  if (!s.account.startsWith('A')) throw new InvalidOptionError('natsAccount.account', 'must be an account public key ("A…")');
  let ok = s.signingKeySeed.startsWith('SA');
  try {
    if (ok) fromSeed(new TextEncoder().encode(s.signingKeySeed)).clear();
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidOptionError('natsAccount.signingKeyFile', 'must hold an account signing key seed ("SA…")');
}

/**
 * The creds file text (user JWT and seed) of one of the run's nkey users, signed with the account's
 * signing key: the same publish, subscribe and response permissions as on the private bus, valid
 * until `expiresAtMs`.
 */
export async function userCreds(user: NkeyUser, name: string, signer: AccountSigner, expiresAtMs: number): Promise<string> {
  const p = user.permissions;
  const claims: Partial<User> = {
    pub: { allow: p.publish.allow, deny: p.publish.deny ?? [] },
    sub: { allow: p.subscribe.allow, deny: p.subscribe.deny ?? [] },
    // One reply per request received, as `allow_responses: true` on the private server.
    ...(p.allow_responses ? { resp: { max: 1, ttl: 0 } } : {}),
  };
  const signingKey = fromSeed(new TextEncoder().encode(signer.signingKeySeed));
  const userKey = fromSeed(new TextEncoder().encode(user.seed));
  try {
    const jwt = await encodeUser(name, userKey, fromPublic(signer.account), claims, { signer: signingKey, exp: Math.floor(expiresAtMs / 1000) });
    return decode(fmtCreds(jwt, userKey));
  } finally {
    signingKey.clear();
    userKey.clear();
  }
}
