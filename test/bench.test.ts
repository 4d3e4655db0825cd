/**
 * Every benchmark section runs (in smoke mode: quick settings, one figure per section, so the test
 * suite stays short) and the runner writes well-formed results. No timed assertions: figures
 * depend on the machine; only the shape of what is written is checked.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertBuiltFresh } from './helpers/built-cli.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SECTIONS = [
  'query',
  'throughput',
  'start-stop',
  'load',
  'memory',
  'scaling',
  'security',
  'recovery',
  'nats-cluster',
  'collectives',
  'dashboard',
  'http-servers',
  'node-start',
  'worker-footprint',
  'keyed',
  'updates',
  'pyspark',
  'elastic',
  'isolation',
];
/** Sections that measure Spark only: a smoke run (quick, without --spark) skips them, saying so. */
const SPARK_ONLY = new Set(['pyspark']);

function runSmoke(out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    // The compiled-library probes run from `npm run build`'s dist/ (checked fresh), not a build of their own.
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'benchmarks/run.ts'), '--smoke', '--out', out, '--compiled', join(ROOT, 'dist')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-20_000)));
    // Bounded: a hung run is killed (the suite's own timeout is longer).
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('npm run bench -- --smoke runs every section to its first figure and writes well-formed JSON, markdown and an SVG chart', async (t) => {
  t.timeout(300_000);
  assertBuiltFresh(['src', 'benchmarks']);
  const out = await mkdtemp(join(tmpdir(), 'sps-bench-test-'));
  try {
    const { code, stderr } = await runSmoke(out);
    t.is(code, 0, stderr);
    const report = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'));
    t.is(report.format, 'sps-bench/1');
    t.true(report.quick);
    t.true(report.smoke);
    t.is(typeof report.machine.cpuModel, 'string');
    t.true(report.machine.cores > 0);
    t.true(report.machine.totalMemGiB > 0);
    t.regex(report.machine.node, /^v\d+/);
    for (const k of ['xstate', '@nats-io/nats-core', 'msgpackr', '@trufflesuite/uws-js-unofficial', 'nats-server', 'pyspark']) {
      t.is(typeof report.machine.versions[k], 'string', k);
    }
    const ids = report.sections.map((s: { id: string }) => s.id);
    t.deepEqual(ids, SECTIONS);
    for (const s of report.sections) {
      if (SPARK_ONLY.has(s.id)) {
        t.is(s.rows.length, 0, s.id);
        t.true(s.skipped.length > 0 && s.skipped.every((k: { reason: string }) => /^quick mode/.test(k.reason)), `${s.id}: skipped in quick mode`);
        continue;
      }
      t.is(s.rows.length, 1, `${s.id} has its one figure`);
      for (const k of s.skipped) t.notRegex(k.reason, /^failed|smoke run/, `${s.id}: ${k.name}`);
      for (const r of s.rows) {
        t.is(typeof r.name, 'string');
        t.is(typeof r.unit, 'string');
        t.true(Number.isInteger(r.n) && r.n > 0, `${s.id}/${r.name} n`);
        t.true(Number.isFinite(r.median), `${s.id}/${r.name} median`);
        t.true(Number.isFinite(r.p99), `${s.id}/${r.name} p99`);
        t.true(r.p99 >= r.median, `${s.id}/${r.name} p99 >= median`);
      }
    }
    for (const target of report.targets) {
      t.is(typeof target.target, 'string');
      t.is(typeof target.measured, 'string');
      t.true(target.met === null || typeof target.met === 'boolean');
    }
    const files = await import('node:fs/promises').then((fs) => fs.readdir(out));
    t.true(
      files.some((f) => /^\d{4}-\d\d-\d\dT.*\.json$/.test(f)),
      'timestamped JSON',
    );
    t.true((await readFile(join(out, 'latest.svg'), 'utf8')).startsWith('<svg'));
    t.regex(await readFile(join(out, 'latest.md'), 'utf8'), /\| target +\| measured/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
