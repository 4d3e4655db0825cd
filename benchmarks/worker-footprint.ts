/**
 * Benchmark: worker footprint (issue 20). With the library compiled as published, how long a
 * worker process takes to import the worker runtime and a trivial server module, and the resident
 * set of an idle partition server; for a server importing the package root (as the examples do)
 * and for one importing the `spark-partition-server/server` entry.
 * Medians of 7 (3 in quick runs): one process per import sample, one idle worker per RSS sample.
 */
import { compiledRoot, ensureCompiled, runProbe } from './lib/compiled.js';
import { measure } from './lib/timing.js';
import { isSmoke, section, type BenchContext, type SectionResult } from './lib/types.js';
import type { FootprintSamples } from './worker-footprint-probe.js';

/** The server modules measured, by label: compiled paths under the bench's compiled copy. */
const SERVERS: Record<string, string> = {
  'server importing the package root': 'benchmarks/servers/trivial-root-server.js',
  'server importing spark-partition-server/server': 'benchmarks/servers/trivial-server.js',
};

export default async function workerFootprint(ctx: BenchContext): Promise<SectionResult> {
  // A smoke run checks that every probe works: one sample of each is enough.
  const reps = isSmoke() ? 1 : ctx.quick ? 3 : 7;
  const s = section('worker-footprint', 'Worker footprint: import time and idle memory of a partition-server process (compiled JS)', {
    samples: reps,
    servers: SERVERS,
  });
  await ensureCompiled();
  const paths = Object.values(SERVERS).map((p) => `${compiledRoot()}/${p}`);
  const out = await runProbe<Record<string, FootprintSamples>>('worker-footprint-probe.js', [String(reps), ...paths], 600_000);
  for (const [label, rel] of Object.entries(SERVERS)) {
    const r = out[`${compiledRoot()}/${rel}`]!;
    const imp = measure(`${label}: import of worker runtime + server`, 'ms', r.importMs);
    const idle = measure(`${label}: idle partition server`, 'MB', r.idleRssMb, { note: 'resident set, no rows' });
    s.targets.push(
      {
        id: `worker-footprint.import (${label})`,
        target: `worker import ≤ 120 ms (${label})`,
        measured: `${imp.median.toFixed(0)} ms`,
        met: imp.median <= 120,
      },
      {
        id: `worker-footprint.idle (${label})`,
        target: `idle worker RSS ≤ 60 MB (${label})`,
        measured: `${idle.median.toFixed(1)} MB`,
        met: idle.median <= 60,
      },
    );
    // One figure per push: a smoke run stops at the first.
    s.rows.push(imp);
    s.rows.push(measure(`${label}: process start to imported`, 'ms', r.sinceStartMs));
    s.rows.push(measure(`${label}: CPU of the process until imported`, 'ms', r.cpuMs, { note: 'with the flags a worker gets' }));
    s.rows.push(
      measure(`${label}: the same with --max-semi-space-size=1`, 'ms', r.cpuHeapFlagMs, {
        note: 'before Node 24 a V8 flag makes V8 refuse the binary’s code cache of the Node built-ins',
      }),
    );
    s.rows.push(idle);
    s.rows.push(
      measure(`${label}: idle partition server, anonymous part`, 'MB', r.idleAnonMb, {
        note: 'heaps and stacks; the rest is file pages every Node process shares',
      }),
    );
  }
  return s;
}
