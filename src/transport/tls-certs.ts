/** Per-run TLS material (a throwaway CA and a server certificate) for a private nats-server. */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { SparkPartitionServerError } from '../errors.js';

/** PEM-encoded TLS material of one run: a CA, and a server certificate signed by it. */
export interface TlsMaterial {
  /** The CA certificate that clients trust (its private key no longer exists). */
  caPem: string;
  /** The server certificate, signed by the CA. */
  certPem: string;
  /** The server certificate's private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
}

/** Addresses every certificate covers, so local clients can always verify the server. */
const ALWAYS_IPS = ['127.0.0.1', '::1'];
const ALWAYS_DNS = ['localhost'];
/** Starts before now, so a host whose clock is a little behind still accepts the certificate. */
const BACKDATE_MS = 60 * 60 * 1000;
const VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;
/** Dot-separated labels, optionally one leading wildcard: Go refuses to load a certificate with a malformed DNS SAN. */
const DNS_NAME = /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$/;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/**
 * Makes a fresh CA and a server certificate for the given IP addresses and DNS names (always
 * including 127.0.0.1, ::1 and localhost). Keys are ECDSA P-256; both certificates are valid from
 * one hour ago until 7 days from now. The CA's private key is never exported and is dropped when
 * this returns, so the CA can sign nothing else: trusting `caPem` means trusting this one server
 * certificate.
 *
 * @throws {SparkPartitionServerError} code `SPS_TLS` if an address is invalid or generation fails.
 */
export async function generateTlsMaterial(opts: { ips?: string[]; dnsNames?: string[] } = {}): Promise<TlsMaterial> {
  const ips = unique([...ALWAYS_IPS, ...(opts.ips ?? [])]);
  const dnsNames = unique([...ALWAYS_DNS, ...(opts.dnsNames ?? [])]);
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new SparkPartitionServerError('SPS_TLS', `Cannot make a TLS certificate for "${ip}": not an IP address.`);
  }
  for (const name of dnsNames) {
    if (!DNS_NAME.test(name)) {
      throw new SparkPartitionServerError('SPS_TLS', `Cannot make a TLS certificate for "${name}": not a DNS name.`);
    }
  }
  try {
    const x509 = loadX509();
    // Pass Node's WebCrypto explicitly instead of relying on the library's global provider.
    const crypto = globalThis.crypto;
    const notBefore = new Date(Date.now() - BACKDATE_MS);
    const notAfter = new Date(Date.now() + VALIDITY_MS);
    const runId = Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString('hex');

    // Non-extractable: the CA key can sign only inside this call, then it is garbage.
    const caKeys = await crypto.subtle.generateKey(EC_KEY, false, ['sign', 'verify']);
    const ca = await x509.X509CertificateGenerator.createSelfSigned(
      {
        // A name unique to the run, so CAs of different runs are never mistaken for each other.
        name: `CN=spark-partition-server CA ${runId}`,
        keys: caKeys,
        notBefore,
        notAfter,
        signingAlgorithm: SIGNING,
        extensions: [
          // pathLength 0: the CA signs only leaf certificates.
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );

    const serverKeys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create(
      {
        subject: `CN=spark-partition-server ${runId}`,
        issuer: ca.subject,
        publicKey: serverKeys.publicKey,
        signingKey: caKeys.privateKey,
        notBefore,
        notAfter,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          // ECDSA keys only sign in TLS, so keyEncipherment would be meaningless.
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          // Clients match the host they dialled against these SANs only (the CN is ignored).
          new x509.SubjectAlternativeNameExtension([
            ...ips.map((value) => ({ type: 'ip' as const, value })),
            ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
          ]),
          await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
          await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );

    // PKCS#8 is the one private-key PEM that Go's tls.X509KeyPair and Node's tls both read for EC keys.
    const pkcs8 = await crypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
    return {
      caPem: ca.toString('pem') + '\n',
      certPem: cert.toString('pem') + '\n',
      keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n',
    };
  } catch (err) {
    throw new SparkPartitionServerError('SPS_TLS', `Could not generate TLS certificates: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

let x509Module: typeof X509 | undefined;

/**
 * Loads `@peculiar/x509` on first use. It depends on tsyringe, which refuses to load without a
 * `Reflect.getMetadata` polyfill (reflect-metadata) even though the x509 build emits no decorator
 * metadata: tsyringe only reads `design:paramtypes` / its own tokens while the library's classes
 * are being decorated, finds none, and never touches `Reflect` again. So if no polyfill is present,
 * a stub answering "no metadata" is put on `Reflect` just for the synchronous `require` and taken
 * off again before any other code can run, leaving no global trace. A real polyfill, if loaded, is
 * used as is.
 */
export function loadX509(): typeof X509 {
  if (x509Module) return x509Module;
  const require = createRequire(import.meta.url);
  const reflect = Reflect as unknown as Record<string, unknown>;
  if (typeof reflect.getMetadata === 'function') return (x509Module = require('@peculiar/x509') as typeof X509);
  const stubbed = ['getMetadata', 'getOwnMetadata'].filter((name) => reflect[name] === undefined);
  for (const name of stubbed) reflect[name] = () => undefined;
  try {
    return (x509Module = require('@peculiar/x509') as typeof X509);
  } finally {
    for (const name of stubbed) delete reflect[name];
  }
}
