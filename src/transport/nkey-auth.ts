import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { Codec } from '@nats-io/nkeys/lib/codec.js';
import type { Authenticator } from '@nats-io/nats-core';

/** The PKCS #8 DER prefix of an Ed25519 private key, followed by its 32-byte seed. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** The SPKI DER prefix of an Ed25519 public key (its raw 32 bytes follow). */
const ED25519_SPKI_PREFIX_BYTES = 12;

/**
 * An nkey authenticator that signs the server's nonce with Node's native Ed25519 (what nats.js's
 * `nkeyAuthenticator` answers, byte for byte): nats.js derives the key pair and signs in JavaScript
 * on every connect, which a cold worker or thread pays for in full at its start.
 */
export function nkeyAuthenticator(seed: string): Authenticator {
  let key: { nkey: string; privateKey: KeyObject } | undefined;
  return (nonce?: string) => {
    key ??= keyOf(seed);
    const sig = nonce ? Buffer.from(sign(null, Buffer.from(nonce), key.privateKey)).toString('base64') : '';
    return { nkey: key.nkey, sig };
  };
}

function keyOf(seed: string): { nkey: string; privateKey: KeyObject } {
  const { prefix, buf } = Codec.decodeSeed(new TextEncoder().encode(seed));
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, buf]), format: 'der', type: 'pkcs8' });
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX_BYTES);
  return { nkey: new TextDecoder().decode(Codec.encode(prefix, raw)), privateKey };
}
