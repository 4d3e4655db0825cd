/**
 * What a worker process loads before it touches its rows: the library's worker runtime and the
 * bench server module. `tsx import-probe.ts` exits once both are imported (start-up cost);
 * `tsx import-probe.ts --stay` stays idle and prints `READY` (memory floor of a loaded worker).
 */
const t0 = performance.now();
await import('../../src/worker/partition-host.js');
await import('./bench-server.js');
const ms = performance.now() - t0;
if (process.argv.includes('--stay')) {
  process.stdout.write(`READY ${ms.toFixed(1)}\n`);
  setTimeout(() => {}, 120_000);
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(1), 500).unref();
  process.on('SIGTERM', () => process.exit(0));
} else {
  process.stdout.write(`IMPORTED ${ms.toFixed(1)}\n`);
}
