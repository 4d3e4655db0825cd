// The project's one build: tsc, then the files tsc does not emit but the compiled library reads
// next to itself (the PySpark runner, the protocol schema the runner validates with, the
// dashboard's static files). `npm run build` and the benchmarks' own compiled copy both run it, so
// the two cannot drift apart.
//
//   node scripts/build.mjs [--outDir <dir>] [other tsc flags…]
//
// Plain Node (no tsx): it runs from `prepack` in a clone before anything else is set up.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
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
  ['src/dashboard/static', 'src/dashboard/static'],
];

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), ...args], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
for (const [from, to] of ASSETS) {
  cpSync(join(root, from), join(outDir, to), { recursive: true, filter: (s) => !s.includes('__pycache__') });
}
