/**
 * `sps credentials --nats-config DIR`: makes what a NATS cluster you run needs to admit the runs'
 * own identities (decentralized auth, no nsc needed): a configuration include for every node, and
 * the account signing key the driver issues each run's users with (option `natsAccount`).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeNatsAccountSetup } from '../security/nats-accounts.js';
import { UsageError } from './run-options.js';

/** Flags of `sps credentials`. */
export interface CredentialsFlags {
  natsConfig?: string;
  /** The account's name in its JWT. */
  name?: string;
}

/** The files `--nats-config` writes, in DIR. */
export const NATS_CONFIG_FILES = {
  include: 'accounts.conf',
  signingKey: 'signing-key.nk',
  operatorKey: 'operator.nk',
  accountKey: 'account.nk',
} as const;

/** Writes the files into a new directory (mode 0700; seeds 0600) and prints how to use them; never a seed. */
export async function credentialsCommand(flags: CredentialsFlags): Promise<number> {
  if (!flags.natsConfig) throw new UsageError('say what to make: --nats-config DIR');
  const dir = resolve(flags.natsConfig);
  if (existsSync(dir)) throw new UsageError(`${dir} exists: give a new directory (its files hold secrets and are never overwritten)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const setup = await makeNatsAccountSetup(flags.name ?? 'sps');
  const file = (name: string, text: string, mode: number): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode, flag: 'wx' });
    return path;
  };
  // nats-server reads JSON as its own format: the include is public (JWTs and public keys only).
  const include = file(NATS_CONFIG_FILES.include, `${JSON.stringify(setup.serverConfig, null, 1)}\n`, 0o644);
  const signingKey = file(NATS_CONFIG_FILES.signingKey, `${setup.signingKeySeed}\n`, 0o600);
  file(NATS_CONFIG_FILES.operatorKey, `${setup.operatorSeed}\n`, 0o600);
  file(NATS_CONFIG_FILES.accountKey, `${setup.accountSeed}\n`, 0o600);
  process.stdout.write(
    [
      `account ${setup.account}`,
      `1. In every node's configuration: include "${include}"   (operator, system account, the runs' account; public)`,
      `2. Give the driver: natsAccount: { account: "${setup.account}", signingKeyFile: "${signingKey}" }`,
      `   (CLI: sps run --nats URLS --nats-account ${setup.account} --nats-signing-key ${signingKey})`,
      `3. Keep ${NATS_CONFIG_FILES.operatorKey} and ${NATS_CONFIG_FILES.accountKey} offline: they are needed only to change the account.`,
      '',
    ].join('\n'),
  );
  return 0;
}
