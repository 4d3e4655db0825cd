/**
 * Benchmark 5 — memory: resident set of partition-server processes, idle (no rows) and holding
 * 250k rows (as objects, as the default initPartition keeps them, and as columns), read from
 * /proc while they serve; with the floors of a bare Node process and of Node + tsx + the library.
 */
import { benchOptions, withCluster } from './lib/cluster.js';
import { compiledProbe } from './lib/compiled.js';
import { rssOf, startChild, waitForOutput } from './lib/proc.js';
import { measure, sleep } from './lib/timing.js';
import { reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';
import type { BenchConfig, ServerStats } from './servers/bench-server.js';
import { valueOf } from './servers/row-store.js';

const PROBE = new URL('./servers/import-probe.ts', import.meta.url).pathname;
const MB = 1024 * 1024;

export default async function memory(ctx: BenchContext): Promise<SectionResult> {
  const rows = ctx.quick ? 10_000 : 250_000;
  const procs = 3;
  const s = section('memory', '5. Memory (resident set) of a partition-server process', { rowsHeld: rows, processesPerCase: procs, settleMs: 500 });

  const floors: [string, string[]][] = [
    ['floor: bare node process (idle)', ['-e', 'process.stdout.write("READY\\n"); setTimeout(() => {}, 120000)']],
    ['floor: node + tsx + library modules loaded (idle)', ['--import', 'tsx', PROBE, '--stay']],
  ];
  for (const [name, args] of floors) {
    const samples: number[] = [];
    for (let i = 0; i < procs; i++) {
      const h = startChild(process.execPath, args);
      try {
        await waitForOutput(h, /READY/, 30_000);
        await sleep(500);
        samples.push((await rssOf(h.child.pid!)) / MB);
      } finally {
        await h.stop();
      }
    }
    s.rows.push(measure(name, 'MB', samples));
  }

  const cases: { name: string; data: unknown[] | { range: { end: number } }; store: BenchConfig['store'] }[] = [
    { name: 'partition server, idle (no rows)', data: [], store: 'columns' },
    {
      name: `partition server holding ${rows} rows as objects`,
      data: Array.from({ length: rows * procs }, (_, id) => ({ id, v: valueOf(id) })),
      store: 'objects',
    },
    { name: `partition server holding ${rows} rows as columns`, data: { range: { end: rows * procs } }, store: 'columns' },
  ];
  for (const c of cases) {
    ctx.log(`  ${c.name} …`);
    await withCluster(benchOptions(ctx, { data: c.data, partitions: procs, config: { store: c.store } }), async (cluster) => {
      await sleep(500);
      const rss: number[] = [];
      const heap: number[] = [];
      const replies = await cluster.requestAll<ServerStats>('stats');
      for (const [p, r] of replies) {
        if (!r.ok) throw new Error(`stats of partition ${p}: ${r.error.message}`);
        rss.push((await rssOf(r.value.pid)) / MB);
        heap.push(r.value.heapUsed / MB);
      }
      s.rows.push(measure(c.name, 'MB', rss));
      s.rows.push(measure(`${c.name}: JS heap used`, 'MB', heap));
    });
  }
  try {
    ctx.log('  idle partition server, compiled JS (no tsx) …');
    const probe = await compiledProbe(ctx.quick ? [2] : [2, 4, 8], ctx.quick ? 1 : 5);
    s.rows.push(measure('compiled JS: partition server, idle (no rows)', 'MB', probe.idleRss, { note: 'library as published, no tsx in the worker' }));
    s.rows.push(
      measure('compiled JS, TypeScript server: partition server, idle (no rows)', 'MB', probe.idleRssTs, {
        note: 'the same server in TypeScript, compiled by the driver',
      }),
    );
  } catch (err) {
    s.skipped.push({ name: 'compiled-JS idle memory', reason: reasonOf(err) });
  }
  for (const [name, label, id, limit] of [
    ['partition server, idle (no rows)', 'library from TypeScript sources, compiled by the driver', 'memory.idle', 80],
    ['compiled JS: partition server, idle (no rows)', 'compiled JS, as published', 'memory.idle-compiled', 80],
    ['compiled JS, TypeScript server: partition server, idle (no rows)', 'compiled JS, TypeScript server', 'memory.idle-typescript', 65],
  ] as const) {
    const idle = s.rows.find((r) => r.name === name);
    s.targets.push({
      id,
      target: `idle partition-server process: RSS < ${limit} MB (${label})`,
      measured: idle ? `${idle.median.toFixed(1)} MB` : 'not measured',
      met: idle ? idle.median < limit : null,
    });
  }
  return s;
}
