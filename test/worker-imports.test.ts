// What a worker loads before it runs the user's server: the static import graph of the compiled
// worker entry and of the `spark-partition-server/server` entry (esbuild's metafile; dynamic
// imports are edges a worker follows only when it needs them), checked against what a worker must
// not load up front.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { assertBuiltCliFresh } from './helpers/built-cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Modules of the driver (its dashboard and launchers included), Spark and the CLI: never in a worker's graph. */
const DRIVER = [
  /^dist\/src\/driver\//,
  /^dist\/src\/spark\//,
  /^dist\/src\/cli\//,
  /^dist\/src\/transport\/tls-certs\.js$/,
  /^dist\/src\/transport\/nats-server\.js$/,
];
/**
 * Packages a worker loads only on first use (Arrow rows or results, request stats, WebSockets on
 * node:http, msgpackr's native string extractor for large messages), or never.
 */
const LAZY = ['apache-arrow', '@peculiar/x509', 'hdr-histogram-js', '@sinclair/typebox', 'ws', '@nats-io/jetstream', 'msgpackr-extract'];

/** Each module statically reachable from `entry` (relative to the root), with how it was first reached. */
async function staticGraph(entry: string): Promise<Map<string, string | undefined>> {
  const r = await build({
    entryPoints: [join(ROOT, entry)],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    write: false,
    metafile: true,
    outdir: join(ROOT, '.sps-tmp', 'worker-imports'),
    logLevel: 'silent',
  });
  const inputs: Metafile['inputs'] = r.metafile.inputs;
  const from = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const i of inputs[file]?.imports ?? []) {
      if (i.kind === 'dynamic-import' || from.has(i.path)) continue;
      from.set(i.path, file);
      queue.push(i.path);
    }
  }
  return from;
}

/** The chain of imports from the entry to `file`. */
function chain(graph: Map<string, string | undefined>, file: string): string {
  const out: string[] = [];
  for (let f: string | undefined = file; f !== undefined; f = graph.get(f)) out.unshift(f);
  return out.join(' → ');
}

/** The modules of `graph` a worker must not load up front, each with its import chain. */
function forbidden(graph: Map<string, string | undefined>): string[] {
  const isBad = (f: string) => DRIVER.some((d) => d.test(f)) || LAZY.some((p) => f.includes(`node_modules/${p}/`));
  // Only where the graph enters a forbidden module, not everything that module imports in turn.
  return [...graph.keys()].filter((f) => isBad(f) && !isBad(graph.get(f) ?? '')).map((f) => chain(graph, f));
}

test.before(() => assertBuiltCliFresh());

// The worker entry loads one of its roles (a worker process, a partition thread, a partition host) by a dynamic import.
for (const entry of ['dist/src/worker/process-worker.js', 'dist/src/worker/partition-thread.js', 'dist/src/server.js']) {
  test(`${entry} imports nothing of the driver, Spark or dashboard, and no Arrow, x509, TypeBox, histograms or ws up front`, async (t) => {
    const graph = await staticGraph(entry);
    // The graph is real: it reaches the modules every worker needs.
    t.true(graph.has('dist/src/worker/partition-server.js') || graph.has('dist/src/worker/partition-host.js'), [...graph.keys()].join('\n'));
    t.deepEqual(forbidden(graph), []);
  });
}

test('the worker entry, and the partition host role, load no partition module up front', async (t) => {
  for (const entry of ['dist/src/worker/worker.js', 'dist/src/worker/thread-host.js']) {
    const graph = await staticGraph(entry);
    t.false(graph.has('dist/src/worker/partition-host.js'), [...graph.keys()].join('\n'));
    t.deepEqual(forbidden(graph), []);
  }
});

test('the package root (which a server module may import) loads no Arrow up front', async (t) => {
  const graph = await staticGraph('dist/src/index.js');
  t.true(graph.has('dist/src/driver/launch/file-source.js'));
  t.deepEqual(
    [...graph.keys()].filter((f) => f.includes('node_modules/apache-arrow/')).map((f) => chain(graph, f)),
    [],
  );
});

test('the check sees a driver module and Arrow where they are imported', async (t) => {
  const root = forbidden(await staticGraph('dist/src/index.js'));
  t.true(
    root.some((c) => c === 'dist/src/index.js → dist/src/driver/cluster.js'),
    root.join('\n'),
  );
  // The Arrow row decoder imports Arrow itself: workers import it only when rows are Arrow.
  const arrow = forbidden(await staticGraph('dist/src/worker/arrow-rows.js'));
  t.true(
    arrow.some((c) => c.startsWith('dist/src/worker/arrow-rows.js → node_modules/apache-arrow/')),
    arrow.join('\n'),
  );
});

test('spark-partition-server/server resolves through the package exports to the server tier', (t) => {
  // Plain Node, from inside the package (its self-reference): the path an installed package takes.
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('spark-partition-server/server'); console.log(JSON.stringify(Object.keys(m).sort()))"],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  t.is(r.status, 0, r.stderr);
  const names = JSON.parse(r.stdout) as string[];
  for (const n of ['PartitionServer', 'HttpPartitionServer', 'SparkPartitionServerError', 'CollectiveError', 'httpResponse']) t.true(names.includes(n), n);
  t.false(names.includes('Cluster'));
  t.false(names.includes('SparkApplication'));
});

test("msgpackr's native string extractor loads with the first large message, and decoding is the same before and after", (t) => {
  // Plain Node on the compiled codec, in a fresh process so nothing has loaded the extractor yet.
  const script = `
    const codec = await import(${JSON.stringify(new URL('../dist/src/protocol/codec.js', import.meta.url).href)});
    const msgpackr = await import('msgpackr/pack');
    const small = { rows: ['a', 'b'] };
    const large = { rows: Array.from({ length: 20000 }, (_, i) => 'row ' + i) };
    const out = { smallLoads: true, before: null, after: null, native: false };
    codec.unpack(codec.pack(small));
    out.smallLoads = codec.nativeDecoderLoad() !== undefined || msgpackr.isNativeAccelerationEnabled;
    out.before = codec.unpack(codec.pack(large));
    await codec.nativeDecoderLoad();
    out.native = msgpackr.isNativeAccelerationEnabled;
    out.after = codec.unpack(codec.pack(large));
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { smallLoads: boolean; before: unknown; after: unknown; native: boolean };
  t.false(out.smallLoads);
  t.true(out.native);
  t.deepEqual(out.after, out.before);
  t.is((out.before as { rows: string[] }).rows[19999], 'row 19999');
});

test('the request histograms load with the first recorded request, not at start; a report taken meanwhile has its latencies, and so has the histogram once loaded', (t) => {
  // Plain Node on the compiled recorder, in a fresh process so nothing has loaded the package yet.
  const script = `
    const { createRequire } = await import('node:module');
    const { RequestRecorder, loadHistogramClass } = await import(${JSON.stringify(new URL('../dist/src/worker/request-recorder.js', import.meta.url).href)});
    const { RequestStats } = await import(${JSON.stringify(new URL('../dist/src/worker/request-stats.js', import.meta.url).href)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('hdr-histogram-js'));
    const recorder = await RequestRecorder.create();
    const r = recorder.endpoint('nats sum');
    const stats = new RequestStats(recorder);
    const out = { atStart: loaded(), windowAtStart: r.window !== undefined };
    recorder.record(r, performance.now() - 20);
    out.meanwhile = stats.take(0, 1000);
    await loadHistogramClass();
    await new Promise((resolve) => setImmediate(resolve));
    out.afterFirst = loaded();
    recorder.record(r, performance.now() - 40);
    recorder.record(recorder.endpoint('http GET /x'), performance.now() - 40);
    out.after = stats.take(0, 1000);
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  type Line = { name: string; requests: number; p50?: number; p99?: number };
  const out = JSON.parse(r.stdout) as {
    atStart: boolean;
    windowAtStart: boolean;
    afterFirst: boolean;
    meanwhile: { total: Line; endpoints: Line[] };
    after: { total: Line; endpoints: Line[] };
  };
  t.false(out.atStart);
  t.false(out.windowAtStart);
  t.true(out.afterFirst);
  // Latencies in ms, at least the time the test put between start and record.
  t.like(out.meanwhile.endpoints[0], { name: 'nats sum', requests: 1 });
  t.true(out.meanwhile.endpoints[0]!.p50! >= 20 && out.meanwhile.total.p99! >= 20, JSON.stringify(out.meanwhile));
  t.like(out.after.endpoints[0], { requests: 2 });
  t.true(out.after.endpoints[0]!.p50! >= 40, JSON.stringify(out.after));
  t.true(out.after.endpoints[1]!.p50! >= 40 && out.after.total.p50! >= 40, JSON.stringify(out.after));
});
