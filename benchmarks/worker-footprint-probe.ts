/**
 * Worker footprint with the library compiled to JavaScript (as published): for each server module
 * given, the time a fresh worker process takes to import the worker runtime and that module
 * (`servers/footprint-probe.js`, one process per sample), and the resident set of idle partition
 * servers (embedded cluster, no rows). Not run directly: `worker-footprint.ts` compiles the project
 * and runs the compiled copy, `node worker-footprint-probe.js <reps> <server.js>…`; it prints one
 * `BENCH_JSON {...}` line.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Cluster } from '../src/index.js';
import { workerNodeFlags } from '../src/driver/launch/worker-command.js';
import { anonRssOf, rssOf } from './lib/proc.js';
import { sleep } from './lib/timing.js';

/** Samples of one server module. */
export interface FootprintSamples {
  importMs: number[];
  sinceStartMs: number[];
  /** CPU of the process until imported, with a worker's flags. */
  cpuMs: number[];
  /** The same with a bounded young generation (`--max-semi-space-size=1`) added where a worker goes without. */
  cpuHeapFlagMs: number[];
  idleRssMb: number[];
  /** The anonymous part of the same (what is not shared with other Node processes). */
  idleAnonMb: number[];
}

const reps = Number(process.argv[2]);
const servers = process.argv.slice(3);
if (!Number.isInteger(reps) || reps < 1 || servers.length === 0) throw new Error('usage: worker-footprint-probe.js <reps> <server.js>…');
const probe = fileURLToPath(new URL('./servers/footprint-probe.js', import.meta.url));
const out: Record<string, FootprintSamples> = {};
for (const s of servers) out[s] = { importMs: [], sinceStartMs: [], cpuMs: [], cpuHeapFlagMs: [], idleRssMb: [], idleAnonMb: [] };

/** Runs the probe on `server` with `flags`; its one line. */
function probeRun(server: string, flags: string[]): { importMs: number; sinceStartMs: number; cpuMs: number } {
  const run = spawnSync(process.execPath, [...flags, probe, server], { encoding: 'utf8', timeout: 60_000 });
  const line = run.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (run.status !== 0 || !line) throw new Error(`footprint probe of ${server} exited ${run.status}: ${run.stderr.slice(-1500)}`);
  return JSON.parse(line.slice('BENCH_JSON '.length)) as { importMs: number; sinceStartMs: number; cpuMs: number };
}

// A worker's flags, and the same with the young generation bounded: on Node before 24 that V8
// flag costs each process the binary's cache of the Node built-ins, which is why workers go without.
const flags = workerNodeFlags();
const heapFlag = flags.some((f) => f.startsWith('--max-semi-space-size')) ? flags : ['--max-semi-space-size=1', ...flags];

// Alternating between the servers, so each sees the same machine.
for (let r = 0; r < reps; r++) {
  for (const s of servers) {
    const { importMs, sinceStartMs, cpuMs } = probeRun(s, flags);
    out[s]!.importMs.push(importMs);
    out[s]!.sinceStartMs.push(sinceStartMs);
    out[s]!.cpuMs.push(cpuMs);
    out[s]!.cpuHeapFlagMs.push(probeRun(s, heapFlag).cpuMs);
  }
}

// One cluster of `reps` idle partitions per server: each worker is one sample.
for (const s of servers) {
  const cluster = new Cluster({ server: pathToFileURL(s), data: [], partitions: reps, log: false, startTimeoutMs: 180_000 });
  try {
    await cluster.start();
    await sleep(500);
    for (const [p, r] of await cluster.requestAll<number>('pid')) {
      if (!r.ok) throw new Error(`pid of partition ${p}: ${r.error.message}`);
      out[s]!.idleRssMb.push((await rssOf(r.value)) / 2 ** 20);
      out[s]!.idleAnonMb.push((await anonRssOf(r.value)) / 2 ** 20);
    }
  } finally {
    await cluster.stop().catch(() => {});
  }
}
console.log(`BENCH_JSON ${JSON.stringify(out)}`);
