/**
 * The benchmark suite (issue 4): `npm run bench [-- --quick [--spark] | --smoke] [-- --only query,memory] [-- --out DIR] [-- --compiled DIR]
 * [-- --profile]`. Runs every benchmark, prints a table per benchmark and a targets summary, and
 * writes `<out>/<timestamp>.json`, `<out>/latest.json`, `<out>/latest.svg` and `<out>/latest.md`
 * (default out: benchmarks/results/, git-ignored).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { removeCompiled, useBuild } from './lib/compiled.js';
import { machineInfo } from './lib/machine.js';
import { renderChart } from './lib/svg.js';
import { sectionTable, targetsTable } from './lib/table.js';
import { EnoughForSmoke, reasonOf, setSmoke, type Benchmark, type BenchContext, type SectionResult } from './lib/types.js';
import queryLatency from './query-latency.js';
import throughput from './throughput.js';
import startStop from './start-stop.js';
import loadRate from './load-rate.js';
import memory from './memory.js';
import scaling from './scaling.js';
import security from './security.js';
import recovery from './recovery.js';
import natsCluster from './nats-cluster.js';
import collectives from './collectives.js';
import dashboard from './dashboard.js';
import httpServers from './http-servers.js';
import nodeStart from './node-start.js';
import workerFootprint from './worker-footprint.js';
import keyed from './keyed.js';
import updates from './updates.js';
import pyspark from './pyspark.js';
import elastic from './elastic.js';
import isolation from './isolation.js';

/** The benchmarks, by the name `--only` takes, in run order. */
export const BENCHMARKS: Record<string, Benchmark> = {
  query: queryLatency,
  throughput,
  'start-stop': startStop,
  load: loadRate,
  memory,
  scaling,
  security,
  recovery,
  'nats-cluster': natsCluster,
  collectives,
  dashboard,
  'http-servers': httpServers,
  'node-start': nodeStart,
  'worker-footprint': workerFootprint,
  keyed,
  updates,
  pyspark,
  elastic,
  isolation,
};

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    /** Quick, and each section stops at its first figure: the test suite's check that every section runs. */
    smoke: { type: 'boolean', default: false },
    spark: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    profile: { type: 'boolean', default: false },
    /** A build of the project to run the compiled-library probes from, instead of compiling one. */
    compiled: { type: 'string' },
  },
});
const outDir = resolve(values.out ?? fileURLToPath(new URL('./results/', import.meta.url)));
const names = values.only ? values.only.split(',').map((n) => n.trim()) : Object.keys(BENCHMARKS);
for (const n of names) if (!BENCHMARKS[n]) throw new Error(`unknown benchmark "${n}" (have: ${Object.keys(BENCHMARKS).join(', ')})`);

await mkdir(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const workerEnv: Record<string, string> = values.profile
  ? { NODE_OPTIONS: `--import=${new URL('./lib/cpu-prof-preload.mjs', import.meta.url).href}`, SPS_BENCH_PROF_DIR: resolve(outDir, `profiles-${stamp}`) }
  : {};
setSmoke(values.smoke);
if (values.compiled) useBuild(resolve(values.compiled));
const quick = values.quick || values.smoke;
const mode = values.smoke ? 'smoke' : quick ? 'quick' : 'full';
const ctx: BenchContext = { quick, sparkInQuick: values.spark, outDir, workerEnv, log: (l) => process.stderr.write(`${l}\n`) };

const started = new Date();
const t0 = performance.now();
const machine = await machineInfo();
ctx.log(`bench: ${mode} run of ${names.join(', ')} on ${machine.cpuModel} (${machine.cores} cores, ${machine.totalMemGiB} GiB), Node ${machine.node}`);

const sections: SectionResult[] = [];
let failed = 0;
for (const name of names) {
  ctx.log(`bench: ${name} …`);
  const s0 = performance.now();
  let s: SectionResult;
  try {
    s = await BENCHMARKS[name]!(ctx);
  } catch (err) {
    if (err instanceof EnoughForSmoke) s = err.section;
    else {
      failed++;
      ctx.log(`bench: ${name} failed: ${(err as Error).stack ?? err}`);
      s = { id: name, title: name, settings: {}, rows: [], skipped: [{ name, reason: `failed: ${reasonOf(err)}` }], notes: [], targets: [] };
    }
  }
  s.durationMs = performance.now() - s0;
  sections.push(s);
  console.log(`\n${sectionTable(s)}\n`);
}

await removeCompiled();
const targets = sections.flatMap((s) => s.targets);
const durationMs = performance.now() - t0;
const header = `Run ${started.toISOString()} (${mode}, ${(durationMs / 1000).toFixed(0)} s) on ${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemGiB} GiB, ${machine.os}; Node ${machine.node}; ${Object.entries(
  machine.versions,
)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ')}`;
console.log(`## Targets\n\n${targetsTable(targets)}\n\n${header}`);

const report = { format: 'sps-bench/1', date: started.toISOString(), quick, smoke: values.smoke, durationMs, machine, benchmarks: names, sections, targets };
const json = JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
const markdown = [`Benchmarks — ${header}`, '', ...sections.map(sectionTable).flatMap((t) => [t, '']), '### Targets', '', targetsTable(targets), ''].join('\n');
await writeFile(resolve(outDir, `${stamp}.json`), json);
await writeFile(resolve(outDir, 'latest.json'), json);
await writeFile(resolve(outDir, 'latest.md'), markdown);
await writeFile(
  resolve(outDir, 'latest.svg'),
  renderChart(
    sections,
    `spark-partition-server benchmarks, ${started.toISOString().slice(0, 10)}, ${machine.cores} cores, Node ${machine.node}${quick ? ` (${mode})` : ''}`,
  ),
);
ctx.log(`bench: wrote ${resolve(outDir, `${stamp}.json`)}, latest.json, latest.md, latest.svg in ${(durationMs / 1000).toFixed(1)} s`);
process.exit(failed > 0 ? 1 : 0);
