/**
 * The TLS identity of one partition attempt's direct collective sockets (on a TLS bus). Each
 * attempt makes its own ECDSA P-256 key and a self-signed certificate, in its own process: the key
 * never leaves it (not on the bus, not in argv, env, logs or errors). What others learn is the
 * certificate's SHA-256 fingerprint, which the attempt registers on its own partition's subject
 * (the server lets only that partition publish there) and the supervisor passes on in the
 * membership. Peers then pin that fingerprint: a socket whose other end shows another certificate
 * is not the member, whatever it knows.
 */
import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { SparkPartitionServerError } from '../errors.js';

/** One attempt's certificate and key (PEM), and the fingerprint it announces. */
export interface DirectIdentity {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
}

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Starts before now (a peer's clock may be behind); validity is not what peers check (they pin the fingerprint), so it is long. */
const BACKDATE_MS = 60 * 60 * 1000;
const VALIDITY_MS = 366 * 24 * 60 * 60 * 1000;

/**
 * Makes a fresh key pair and a self-signed certificate for this attempt's direct sockets.
 * `@peculiar/x509` is loaded here, on first use: a worker on a plain bus never loads it.
 *
 * @throws {SparkPartitionServerError} code `SPS_TLS` if generation fails.
 */
export async function makeDirectIdentity(): Promise<DirectIdentity> {
  try {
    const { loadX509 } = await import('../transport/tls-certs.js');
    const x509 = loadX509();
    const crypto = globalThis.crypto;
    const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
    const serial = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
    // A positive serial number (its top bit clear), as DER integers are signed.
    serial[0]! &= 0x7f;
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serial.toString('hex'),
        name: 'CN=spark-partition-server direct',
        keys,
        notBefore: new Date(Date.now() - BACKDATE_MS),
        notAfter: new Date(Date.now() + VALIDITY_MS),
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        ],
      },
      crypto,
    );
    const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
    return {
      certPem: cert.toString('pem') + '\n',
      keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n',
      fingerprint: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
    };
  } catch (err) {
    // The message of a failed generation names no key material (there is none yet, or it is dropped).
    throw new SparkPartitionServerError(
      'SPS_TLS',
      `Could not make the certificate of the direct collective socket: ${(err as Error)?.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** The SHA-256 fingerprint (lowercase hex) of the certificate a TLS peer presented; `undefined` if it presented none. */
export function fingerprintOf(cert: PeerCertificate | null | undefined): string | undefined {
  if (!cert?.raw?.length) return undefined;
  return createHash('sha256').update(cert.raw).digest('hex');
}
