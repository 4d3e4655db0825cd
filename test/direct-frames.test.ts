// Frames on a direct socket, plain and TLS, in one process: a sender queues frames back to back
// (as a collective does, without waiting for the socket to drain), with data sizes on both sides
// of TLS record boundaries, and the receiver must deliver each whole, in order, byte for byte.
import test from 'ava';
import { makeDirectIdentity } from '../src/security/direct-tls.js';
import { DirectLinks } from '../src/worker/collectives/direct.js';

/** Data sizes around the largest TLS record (16 KiB), empty and one byte, and a chunk of a large value with an odd tail. */
const RECORD = 16 * 1024;
const SIZES = [0, 1, RECORD - 9, RECORD - 8, RECORD, RECORD + 1, 3 * RECORD + 5, 512 * 1024, 512 * 1024 + 3, 7];

/** Bytes that differ by frame and by position, so a misplaced or repeated slice shows. */
function dataOf(frame: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  for (let i = 0; i < size; i++) d[i] = (i * 31 + frame * 7) & 0xff;
  return d;
}

async function roundTrip(tls: boolean): Promise<{ headers: string[]; data: Uint8Array[] }> {
  const frames = [...SIZES, ...SIZES];
  const got: { headers: string[]; data: Uint8Array[] } = { headers: [], data: [] };
  let all!: () => void;
  const arrived = new Promise<void>((resolve) => (all = resolve));
  const rx = new DirectLinks(
    (_from, _attempt, header, data) => {
      got.headers.push(Buffer.from(header).toString());
      got.data.push(Uint8Array.from(data));
      if (got.headers.length === frames.length) all();
    },
    () => {},
  );
  const tx = new DirectLinks(
    () => {},
    () => {},
  );
  let cert: string | undefined;
  if (tls) {
    const [a, b] = await Promise.all([makeDirectIdentity(), makeDirectIdentity()]);
    rx.secure(a, async () => b.fingerprint);
    tx.secure(b, async () => a.fingerprint);
    cert = a.fingerprint;
  }
  try {
    const port = await rx.listen('127.0.0.1', 2);
    const sock = await tx.socketTo(0, '127.0.0.1', port, async () => rx.grant(1, 0, 0), cert);
    // All queued before any is flushed; the data arrays change only once their flushes resolved.
    const sent = frames.map((size, f) => ({ header: Buffer.from(`frame ${f}`.padEnd(20 + (f % 5), '.')), data: dataOf(f, size) }));
    await Promise.all(sent.map((s) => DirectLinks.write(sock, s.header, s.data)));
    await arrived;
    return got;
  } finally {
    tx.close();
    rx.close();
  }
}

for (const tls of [false, true]) {
  test(`${tls ? 'TLS' : 'plain'}: frames queued back to back arrive whole and in order, across record boundaries`, async (t) => {
    const frames = [...SIZES, ...SIZES];
    const got = await roundTrip(tls);
    t.is(got.headers.length, frames.length);
    for (const [f, size] of frames.entries()) {
      t.is(got.headers[f], `frame ${f}`.padEnd(20 + (f % 5), '.'));
      t.deepEqual(got.data[f], dataOf(f, size), `data of frame ${f} (${size} bytes)`);
    }
  });
}
