/**
 * The machine's baseline for allReduce: a bare ring allreduce of float32 vectors over plain TCP
 * between Node processes on loopback, no bus, no envelope, no checks.
 *
 * node --import tsx tcp-ring-worker.ts <rank> <ports,csv> <elements> <iterations> <warmup>
 * Rank 0 prints `BENCH_JSON [ms, ...]`, one time per allreduce.
 */
import { createConnection, createServer, type Socket } from 'node:net';

const [rank, size, ports, elements, iterations, warmup] = ((): [number, number, number[], number, number, number] => {
  const a = process.argv.slice(2);
  const ps = a[1]!.split(',').map(Number);
  return [Number(a[0]), ps.length, ps, Number(a[2]), Number(a[3]), Number(a[4])];
})();

/** Reads exact byte counts from a socket, in order. */
class Reader {
  private chunks: Buffer[] = [];
  private have = 0;
  private wake?: () => void;
  constructor(s: Socket) {
    s.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      this.wake?.();
    });
  }
  async read(into: Uint8Array): Promise<void> {
    let off = 0;
    while (off < into.length) {
      if (this.have === 0) await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
      while (off < into.length && this.chunks.length) {
        const c = this.chunks[0]!;
        const n = Math.min(c.length, into.length - off);
        into.set(c.subarray(0, n), off);
        off += n;
        this.have -= n;
        if (n === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(n);
      }
    }
  }
}

const left = new Promise<Socket>((resolve) => {
  const srv = createServer((s) => {
    s.setNoDelay(true);
    resolve(s);
  });
  srv.listen(ports[rank], '127.0.0.1');
});
const right = await new Promise<Socket>((resolve) => {
  const attempt = (): void => {
    const s = createConnection({ host: '127.0.0.1', port: ports[(rank + 1) % size]! }, () => {
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', () => setTimeout(attempt, 20));
  };
  attempt();
});
const reader = new Reader(await left);

const x = new Float32Array(elements).fill(rank + 1);
const bounds = Array.from({ length: size + 1 }, (_, i) => Math.floor((i * elements) / size));
const block = (b: number): Float32Array => x.subarray(bounds[b]!, bounds[b + 1]!);
const incoming = new Float32Array(Math.ceil(elements / size) + 1);
const inBytes = new Uint8Array(incoming.buffer);
const send = (a: Float32Array): boolean => right.write(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
const mod = (v: number): number => ((v % size) + size) % size;

async function allreduce(): Promise<void> {
  // Reduce-scatter, then all-gather: 2(n-1) steps, each passing one block to the right.
  for (let s = 0; s < size - 1; s++) {
    send(block(mod(rank - s)));
    const b = block(mod(rank - s - 1));
    await reader.read(inBytes.subarray(0, b.byteLength));
    for (let i = 0; i < b.length; i++) b[i] = b[i]! + incoming[i]!;
  }
  for (let s = 0; s < size - 1; s++) {
    send(block(mod(rank + 1 - s)));
    const b = block(mod(rank - s));
    await reader.read(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  }
}

for (let i = 0; i < warmup; i++) await allreduce();
const times: number[] = [];
for (let i = 0; i < iterations; i++) {
  x.fill(rank + 1);
  const t0 = performance.now();
  await allreduce();
  times.push(performance.now() - t0);
}
const expected = (size * (size + 1)) / 2;
if (x[0] !== expected || x[elements - 1] !== expected) throw new Error(`ring allreduce gave ${x[0]}, expected ${expected}`);
if (rank === 0) process.stdout.write(`BENCH_JSON ${JSON.stringify(times)}\n`);
right.end();
(await left).end();
process.exit(0);
