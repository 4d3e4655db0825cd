// The native nkey authenticator answers a nonce exactly as nats.js's own does (Ed25519 is
// deterministic), and a nats-server admits it (every cluster test connects with it).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { nkeyAuthenticator as natsNkeyAuthenticator } from '@nats-io/nats-core';
import { createUser } from '@nats-io/nkeys';
import { nkeyAuthenticator } from '../src/transport/nkey-auth.js';

test("the native nkey authenticator gives nats.js's public key and signature for any nonce", (t) => {
  for (let i = 0; i < 5; i++) {
    const seed = new TextDecoder().decode(createUser().getSeed());
    const nonce = randomBytes(16).toString('base64url');
    const ours = nkeyAuthenticator(seed)(nonce);
    t.deepEqual(ours, natsNkeyAuthenticator(new TextEncoder().encode(seed))(nonce));
    t.not((ours as { sig: string }).sig, '');
  }
});

test('without a nonce it sends the public key and no signature, as nats.js does', (t) => {
  const seed = new TextDecoder().decode(createUser().getSeed());
  t.deepEqual(nkeyAuthenticator(seed)(), natsNkeyAuthenticator(new TextEncoder().encode(seed))());
});
