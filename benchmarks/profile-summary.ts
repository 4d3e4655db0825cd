/**
 * Summarizes V8 CPU profiles (as written by `npm run bench -- --profile`, which runs workers with
 * `--cpu-prof`): `tsx benchmarks/profile-summary.ts <dir-or-file.cpuprofile> [top]` prints the
 * functions with the most self time, over all profiles given.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time in ms per function (name + file:line) of one profile. */
export function selfTimes(p: Profile): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!);
    if (!n) continue;
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|src|benchmarks)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    out.set(key, (out.get(key) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  return out;
}

const [target = '.', topArg = '20'] = process.argv.slice(2);
const files = (await stat(target)).isDirectory() ? (await readdir(target)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(target, f)) : [target];
const total = new Map<string, number>();
let all = 0;
for (const f of files) {
  for (const [k, v] of selfTimes(JSON.parse(await readFile(f, 'utf8')) as Profile)) {
    total.set(k, (total.get(k) ?? 0) + v);
    all += v;
  }
}
console.log(`${files.length} profile(s), ${all.toFixed(0)} ms sampled`);
for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) {
  console.log(`${v.toFixed(1).padStart(9)} ms ${((v / all) * 100).toFixed(1).padStart(5)}%  ${k}`);
}
