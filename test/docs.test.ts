/**
 * The documentation holds together: every relative link and anchor in README.md and docs/*.md
 * resolves (remark-validate-links, offline), `npm run docs` builds the site without a warning,
 * and the error-code page agrees with the codes the sources use.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, NOT_RETRYABLE } from '../src/index.js';
import { renderErrorTable, withErrorTable } from '../scripts/error-table.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const REMARK = join(ROOT, 'node_modules/remark-cli/cli.js');
const TYPEDOC = join(ROOT, 'node_modules/typedoc/bin/typedoc');

/** Runs a Node script to its end (killed after `limitMs`), keeping the tail of its output. */
function runNode(args: string[], limitMs: number, cwd = ROOT): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (c: string): void => void (output = (output + c).slice(-20_000));
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** remark with GFM tables and link validation, failing on any warning; `repository: false` keeps it offline. */
function checkLinks(files: string[], cwd = ROOT): Promise<{ code: number | null; output: string }> {
  // Plugins by path, so a check outside the clone (the negative test's folder) finds them too.
  const plugins = [
    '--use',
    join(ROOT, 'node_modules/remark-gfm/index.js'),
    '--use',
    `${join(ROOT, 'node_modules/remark-validate-links/index.js')}=repository:false`,
  ];
  return runNode([REMARK, '--no-config', '--no-ignore', '--quiet', '--frail', '--no-stdout', ...plugins, ...files], 60_000, cwd);
}

async function docFiles(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', 'benchmarks/HISTORY.md', ...docs];
}

test('every relative link and anchor in README.md and docs/*.md resolves', async (t) => {
  const files = await docFiles();
  t.true(files.length > 10, files.join(' '));
  const { code, output } = await checkLinks(files);
  t.is(code, 0, output);
});

test('the link check fails on a missing anchor and a missing file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sps-docs-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a.md'), '# A\n\n## Here\n\n[ok](#here) [ok](b.md#there) [bad](#nowhere) [bad](b.md#nothing) [bad](missing.md)\n');
  await writeFile(join(dir, 'b.md'), '# B\n\n## There\n');
  const { code, output } = await checkLinks(['a.md', 'b.md'], dir);
  t.not(code, 0);
  t.regex(output, /nowhere/);
  t.regex(output, /nothing/);
  t.regex(output, /missing\.md/);
  t.notRegex(output, /#here|#there/);
});

test('npm run docs builds the API reference and the guides into one site without a warning', async (t) => {
  t.timeout(180_000);
  const out = await mkdtemp(join(tmpdir(), 'sps-docs-site-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  // The package script is `typedoc`; only the output folder differs, so the clone's docs/api is left alone.
  // TypeDoc skips its own type check (skipErrorChecking): `npm run build` type-checks the same sources with tsc before the tests, and that check was most of TypeDoc's time.
  const { code, output } = await runNode([TYPEDOC, '--out', out], 150_000);
  t.is(code, 0, output);
  const documents = await readdir(join(out, 'documents'));
  for (const guide of (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md'))) {
    t.true(documents.includes(guide.replace(/\.md$/, '.html')), `${guide} is in the site`);
  }
  t.regex(await readFile(join(out, 'index.html'), 'utf8'), /npm run demo/, 'the README is the site’s front page');
});

/** Every `SPS_*` name the sources (TypeScript, the Spark runner, the Python package) use. */
async function namesInSources(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const dir of ['src', 'python']) {
    const entries = await readdir(join(ROOT, dir), { recursive: true });
    for (const rel of entries) {
      if (!/\.(ts|py|js|mjs)$/.test(rel) || rel.includes('__pycache__')) continue;
      const text = await readFile(join(ROOT, dir, rel), 'utf8');
      for (const m of text.matchAll(/\bSPS_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(m[0]);
    }
  }
  return names;
}

/** The rows of the table under `## <heading>` in docs/errors.md, as cells. */
function tableUnder(page: string, heading: string): string[][] {
  const start = page.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/errors.md has no "## ${heading}" section`);
  const rest = page.slice(start + heading.length + 5);
  const end = rest.indexOf('\n## ');
  const section = end < 0 ? rest : rest.slice(0, end);
  return section
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-| ]+\|$/.test(l))
    .slice(1)
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
}

const sps = (cell: string): string[] => [...cell.matchAll(/`(SPS_[A-Z0-9_]+)`/g)].map((m) => m[1]!);

test('docs/errors.md lists every SPS_ code and environment variable of the sources, with the right retryable flag', async (t) => {
  const page = await readFile(join(ROOT, 'docs/errors.md'), 'utf8');
  t.is(withErrorTable(page, renderErrorTable()), page, 'the table of codes is what npm run protocol writes from src/error-codes.ts');
  t.deepEqual(Object.keys(ERROR_CODES), Object.keys(ERROR_CODES).sort(), 'the registry in alphabetical order');
  const codes = tableUnder(page, 'Codes');
  const env = new Set(tableUnder(page, 'Environment variables').flatMap((row) => sps(row[0]!)));
  const codeNames = new Set<string>();
  for (const [cell, retryable] of codes) {
    const [code] = sps(cell!);
    t.truthy(code, `a code in "${cell}"`);
    t.false(codeNames.has(code!), `${code} is listed once`);
    codeNames.add(code!);
    t.is(retryable, NOT_RETRYABLE.has(code!) ? 'no' : 'yes', `${code}: retryable column against NOT_RETRYABLE`);
  }
  t.deepEqual([...codeNames], [...codeNames].sort(), 'codes in alphabetical order');
  for (const code of NOT_RETRYABLE) t.true(codeNames.has(code), `${code} (NOT_RETRYABLE) is documented`);
  for (const row of tableUnder(page, 'Classes')) for (const code of sps(row[1]!)) t.true(codeNames.has(code), `${code} of ${row[0]} has a row in Codes`);

  const used = await namesInSources();
  const undocumented = [...used].filter((n) => !codeNames.has(n) && !env.has(n)).sort();
  t.deepEqual(undocumented, [], 'names in the sources missing from docs/errors.md');
  const stale = [...codeNames, ...env].filter((n) => !used.has(n)).sort();
  t.deepEqual(stale, [], 'names in docs/errors.md that no source uses');
});
