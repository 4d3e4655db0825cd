/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The live dashboard on an embedded cluster of 3 partitions (private nats-server, so the workers'
 * `stats` reports go through the bus's permissions): the token guards every route and the
 * WebSocket, and in headless Chromium (Debian's `chromium`, installed by `scripts/setup.sh
 * --browser` when missing) the page loads without console errors, shows every partition serving
 * with request counters from the workers, and the new attempt after a worker is SIGKILLed. One
 * cluster and one browser for the whole file.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import WebSocket from 'ws';
import { Cluster, InvalidOptionError, type Dashboard, type DashboardSnapshot } from '../src/index.js';
import { portOpen, TEST_SERVER } from './helpers/harness.js';
import { openWs } from './helpers/ws-client.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUTPUT = `${ROOT}test-output`;
const PARTITIONS = 3;

/** Debian's chromium, installing it through the setup script when missing; `undefined` where it cannot be. */
function findChromium(): string | undefined {
  const which = (): string | undefined => {
    try {
      return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const found = which();
  if (found) return found;
  const setup = spawnSync('bash', [`${ROOT}scripts/setup.sh`, '--quiet', '--browser'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (setup.status !== 0) console.log(`dashboard browser test skipped: chromium could not be installed (${setup.stderr.trim().split('\n').at(-1) ?? ''})`);
  return which();
}

const chromium = findChromium();
const browserTest = chromium ? test.serial : test.serial.skip;

let cluster: Cluster;
let dashboard: Dashboard;
let browser: Browser | undefined;

test.before(async () => {
  cluster = new Cluster({ server: TEST_SERVER, data: { range: { end: 300 } }, partitions: PARTITIONS, log: false });
  await cluster.start();
  dashboard = await cluster.dashboard();
  if (chromium) {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      // Root in a container: no user namespaces for Chromium's sandbox.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  }
});

test.after.always(async () => {
  await browser?.close();
  await cluster?.stop().catch(() => {});
});

const base = (): string => `http://${dashboard.host}:${dashboard.port}`;

test.serial('binds 127.0.0.1 and refuses every route and the WebSocket without the token', async (t) => {
  t.is(dashboard.host, '127.0.0.1');
  t.true(dashboard.url.startsWith(`${base()}/?token=`));
  for (const path of ['/', '/dashboard.js', '/dashboard.css', '/snapshot', '/?token=wrong']) {
    const res = await fetch(base() + path, { redirect: 'manual' });
    t.is(res.status, 401, path);
    const body = await res.text();
    t.false(body.includes(cluster.id!), `${path} leaks no data`);
  }
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`ws://${dashboard.host}:${dashboard.port}/ws`, { headers: { cookie: 'sps_dashboard=wrong' } });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => reject(new Error('the WebSocket opened without the token')));
    ws.once('error', reject);
  });
  t.is(status, 401);
  // Another site's page cannot open it either, even with the token.
  const fromElsewhere = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`ws://${dashboard.host}:${dashboard.port}/ws`, {
      origin: 'http://evil.example',
      headers: { authorization: `Bearer ${cluster.token!}` },
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => reject(new Error('the WebSocket opened for another origin')));
    ws.once('error', reject);
  });
  t.is(fromElsewhere, 401);
  // A stale cookie (an earlier run on the same port) does not shadow the token in the address.
  const fresh = await fetch(dashboard.url, { redirect: 'manual', headers: { cookie: `sps_dashboard_${dashboard.port}=stale` } });
  t.is(fresh.status, 303);
  t.regex(fresh.headers.get('set-cookie') ?? '', new RegExp(`^sps_dashboard_${dashboard.port}=[0-9a-f]+; HttpOnly; SameSite=Strict; Path=/$`));

  // With the token as a header: the snapshot, with every partition.
  const res = await fetch(`${base()}/snapshot`, { headers: { authorization: `Bearer ${cluster.token!}` } });
  t.is(res.status, 200);
  const snap = (await res.json()) as DashboardSnapshot;
  t.is(snap.cluster.id, cluster.id);
  t.deepEqual(
    snap.partitions.map((p) => p.state),
    Array<string>(PARTITIONS).fill('serving'),
  );
});

browserTest('in Chromium: every partition serving, request counters, and the new attempt after a SIGKILL', async (t) => {
  const page: Page = await browser!.newPage();
  t.teardown(() => page.close());
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  await page.setViewport({ width: 1500, height: 700 });

  await page.goto(dashboard.url, { waitUntil: 'load' });
  t.false(page.url().includes('token='), 'the token left the address bar for a cookie');
  await page.waitForFunction((n: number) => document.querySelectorAll('#partitions tr[data-state="serving"]').length === n, { timeout: 30_000 }, PARTITIONS);
  await page.waitForSelector('#connection[data-connected="true"]');

  // Requests over NATS and HTTP: the workers' counters reach the page.
  for (let p = 0; p < PARTITIONS; p++) {
    await cluster.request(p, 'sum');
    const { host, port } = cluster.hosts.get(p)!;
    await (await fetch(`http://${host}:${port}/app/get_list`)).text();
  }
  await page.waitForFunction(
    (n: number) => [...document.querySelectorAll('#partitions td.requests')].filter((c) => Number(c.textContent) >= 2).length === n,
    { timeout: 30_000 },
    PARTITIONS,
  );

  const victim = cluster.members[1]!;
  process.kill(victim.pid, 'SIGKILL');
  await page.waitForSelector(`#partitions tr[data-partition="1"][data-attempt="${victim.attempt + 1}"][data-state="serving"]`, { timeout: 60_000 });
  const row = await page.$eval('#partitions tr[data-partition="1"]', (tr) => ({
    restarts: tr.querySelector('td.restarts')!.firstChild?.textContent,
    cause: tr.querySelector('td.restarts summary')?.textContent,
    pid: tr.querySelector('td.pid')!.textContent,
  }));
  t.is(row.restarts, '1');
  t.regex(row.cause ?? '', /SIGKILL/);
  t.is(row.pid, String(cluster.members[1]!.pid));
  const timeline = await page.$$eval('#timeline li', (items) => items.map((i) => i.textContent ?? ''));
  t.true(
    timeline.some((l) => /partition 1 attempt 1 replaced/.test(l)),
    timeline.join('\n'),
  );

  // Traffic on every partition until each row shows a request rate and latency percentiles.
  let loading = true;
  const load = Promise.all(
    Array.from({ length: PARTITIONS }, async (_, p) => {
      while (loading) await cluster.request(p, 'sum');
    }),
  );
  t.teardown(() => (loading = false));
  await page.waitForFunction(
    (n: number) =>
      [...document.querySelectorAll('#partitions tr')].filter(
        (tr) => Number(tr.querySelector('td.rate')?.textContent) > 0 && Number.isFinite(Number(tr.querySelector('td.p99')?.textContent)),
      ).length === n,
    { timeout: 30_000 },
    PARTITIONS,
  );
  loading = false;
  await load;

  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: `${OUTPUT}/dashboard.png`, fullPage: true });
  t.deepEqual(problems, []);
});

test.serial("on the node:http server (option http: 'node'): the token guards the page and the WebSocket, which pushes snapshots", async (t) => {
  const d = await cluster.dashboard({ http: 'node' });
  t.teardown(() => d.close());
  const at = `http://${d.host}:${d.port}`;
  t.is((await fetch(`${at}/snapshot`)).status, 401);
  await t.throwsAsync(openWs(`ws://${d.host}:${d.port}/ws`), { message: 'refused with 401' });
  const page = await fetch(d.url, { redirect: 'manual' });
  t.is(page.status, 303);
  const ws = await openWs(`ws://${d.host}:${d.port}/ws`, { headers: { authorization: `Bearer ${cluster.token!}` } });
  t.teardown(() => ws.ws.terminate());
  const snap = JSON.parse(String(await ws.next())) as DashboardSnapshot;
  t.is(snap.cluster.id, cluster.id);
  await d.close();
  t.is(await ws.closed, 1001);
  t.false(await portOpen(d.port));
});

test.serial('option http of the dashboard is validated, naming it', async (t) => {
  await t.throwsAsync(cluster.dashboard({ http: 'fast' as never }), { instanceOf: InvalidOptionError, message: /dashboard\.http/ });
});

test.serial('a bad port is refused, naming the option', async (t) => {
  await t.throwsAsync(cluster.dashboard({ port: 70_000 }), { instanceOf: InvalidOptionError, message: /dashboard\.port/ });
});

test.serial('stop() closes the dashboard', async (t) => {
  await cluster.stop();
  t.false(await portOpen(dashboard.port));
  await t.throwsAsync(cluster.dashboard(), { message: /needs a starting or running cluster; it is stopped/ });
});
