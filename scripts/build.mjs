// The project's one build: tsc, then the files tsc does not emit but the compiled library reads
// next to itself (the PySpark runner, the protocol schema the runner validates with, the
// dashboard's static files). `npm run build` and the benchmarks' own compiled copy both run it, so
// the two cannot drift apart.
//
//   node scripts/build.mjs [--outDir <dir>] [other tsc flags…]
//
// Plain Node (no tsx): it runs from `prepack` in a clone before anything else is set up.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outFlag = args.indexOf('--outDir');
const outDir = outFlag >= 0 && args[outFlag + 1] ? resolve(args[outFlag + 1]) : join(root, 'dist');

/** Source → destination (relative to the root and to the output directory) of what tsc does not emit. */
const ASSETS = [
  ['src/spark/runner', 'src/spark/runner'],
  ['src/protocol/protocol.schema.json', 'src/protocol/protocol.schema.json'],
  ['src/driver/dashboard/static', 'src/driver/dashboard/static'],
];

/**
 * The runner's JVM helper (src/spark/runner/PartitionSecrets.java) as `sps-runner.jar` beside the
 * runner, compiled against the Spark that setup installed (or $SPARK_HOME). Without javac or a
 * Spark the jar is left out, with a warning: Spark runs then fail with an error naming it.
 */
function buildRunnerJar() {
  const dir = join(root, 'src/spark/runner');
  const source = join(dir, 'PartitionSecrets.java');
  const jar = join(dir, 'sps-runner.jar');
  if (existsSync(jar) && statSync(jar).mtimeMs >= statSync(source).mtimeMs) return;
  const venvLib = join(root, '.venv/lib');
  const candidates = [
    ...(existsSync(venvLib) ? readdirSync(venvLib).map((py) => join(venvLib, py, 'site-packages/pyspark/jars')) : []),
    ...(process.env.SPARK_HOME ? [join(process.env.SPARK_HOME, 'jars')] : []),
  ];
  const sparkJars = candidates.find((d) => existsSync(d));
  const warn = (why) => console.warn(`build: src/spark/runner/sps-runner.jar not built (${why}); Spark runs need it`);
  if (!sparkJars) return warn('no Spark found: run scripts/setup.sh or set SPARK_HOME');
  const classes = mkdtempSync(join(tmpdir(), 'sps-jar-'));
  try {
    const javac = spawnSync('javac', ['--release', '8', '-Xlint:-options', '-cp', join(sparkJars, '*'), '-d', classes, source], { stdio: 'inherit' });
    if (javac.error) return warn(`javac: ${javac.error.message}`);
    if (javac.status !== 0) process.exit(javac.status ?? 1);
    const pack = spawnSync('jar', ['cf', jar, '-C', classes, '.'], { stdio: 'inherit' });
    if (pack.error || pack.status !== 0) return warn(`jar: ${pack.error?.message ?? `exit ${pack.status}`}`);
  } finally {
    rmSync(classes, { recursive: true, force: true });
  }
}

buildRunnerJar();
rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), ...args], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
for (const [from, to] of ASSETS) {
  cpSync(join(root, from), join(outDir, to), { recursive: true, filter: (s) => !s.includes('__pycache__') && !s.endsWith('.java') });
}
