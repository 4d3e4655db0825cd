/**
 * The Python package (python/: spark_partition_server) on a real PySpark session: each test runs
 * one script of test/helpers/pyspark with the project's .venv (most in one shared local session, see
 * below) and checks the findings it prints. The script's process group is killed when a test ends early.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { uwsUnavailable } from '../src/transport/uws-load.js';
import { ROOT, lineOf, runScript, sharedSession, spawnPython } from './helpers/python-script.js';

// These scripts share one local session, one after another (a JVM start each spared; runner_failed
// stops the session, so it comes last); the others need a process of their own (a killed Python
// process, a notebook kernel, a Connect session).
const shared = sharedSession(['bad_input', 'seed_demo', 'attached', 'keyed', 'data_kinds', 'worker_killed', 'interrupted', 'runner_failed']);
test.after.always(() => shared.stop());

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test("the seed's demo from PySpark in a local session: an RDD of 1000 numbers, HTTP and NATS queries, results as an RDD and a DataFrame, a restart in a with block", async (t) => {
  const f = await shared.findings('seed_demo');
  t.deepEqual(f.hosts, { 0: ['127.0.0.1', true], 1: ['127.0.0.1', true] });
  t.deepEqual(f.http0, range(0, 500));
  t.deepEqual(f.nats0, range(0, 500));
  t.deepEqual(f.all, { 0: range(0, 500), 1: range(500, 1000) });
  t.deepEqual(f.attempts, [0, 0]);
  const results = [
    { partition: 0, count: 500, sum: 124750 },
    { partition: 1, count: 500, sum: 374750 },
  ];
  t.deepEqual(f.results, { 0: [results[0]], 1: [results[1]] });
  t.deepEqual(f.result_rdd, results);
  t.deepEqual(f.result_df, results);
  t.deepEqual(f.again, [500, 501, 502]);
  t.deepEqual(f.again_results, { 0: [results[0]], 1: [results[1]] });
});

interface AttachedRun {
  summary: Record<string, { count: number; sum: number }>;
  results: Record<string, { partition: number; count: number; sum: number }[]>;
  result_df?: { partition: number; count: number; sum: number }[];
}

test('clusters one after another on one attached application: one Node driver serves them all, a second cluster while one runs and one on a closed application are refused with SPS_STATE, a refused start leaves it serving, close() ends the driver', async (t) => {
  const f = (await shared.findings('attached')) as {
    spark_total: { count: number; sum: number };
    first: AttachedRun;
    second: AttachedRun;
    second_while_running: { code: string; message: string } | null;
    bad_start: { code: string; message: string } | null;
    after_close: { code: string; message: string } | null;
    ids_differ: boolean;
    same_driver: boolean;
    driver_alive_after_close: boolean;
    active_jobs: number[];
  };
  const firstSummary = Object.values(f.first.summary);
  t.is(firstSummary.length, 3);
  t.is(
    firstSummary.reduce((n, s) => n + s.count, 0),
    f.spark_total.count,
  );
  t.is(
    firstSummary.reduce((n, s) => n + s.sum, 0),
    f.spark_total.sum,
  );
  const firstResults = Object.entries(f.first.summary).map(([p, s]) => ({ partition: Number(p), count: s.count, sum: s.sum }));
  t.deepEqual(Object.values(f.first.results).flat(), firstResults);
  t.deepEqual(f.first.result_df, firstResults, 'cache_result on an attached application');
  t.deepEqual(f.second.results, { 0: [{ partition: 0, count: 50, sum: 1225 }], 1: [{ partition: 1, count: 50, sum: 3725 }] });
  t.like(f.second_while_running, { code: 'SPS_STATE', message: 'another cluster runs on this application; stop() it first' });
  t.like(f.bad_start, { code: 'SPS_INVALID_OPTION' });
  t.regex(f.bad_start!.message, /"start_timeout_ms": must be an integer/);
  t.true(f.ids_differ);
  t.true(f.same_driver, 'the first Node driver served every cluster');
  t.false(f.driver_alive_after_close);
  t.like(f.after_close, { code: 'SPS_STATE', message: 'the application is closed; attach again' });
  t.deepEqual(f.active_jobs, []);
});

test('bad input from PySpark: each a clear Python exception with its code, before any Spark job', async (t) => {
  const f = (await shared.findings('bad_input')) as Record<string, { type: string | null; code?: string; message?: string; jobs?: number }>;
  const expect: Record<string, [string, string, RegExp]> = {
    server: ['InvalidOptionError', 'SPS_INVALID_OPTION', /no-such-server\.ts' does not exist/],
    data: ['InvalidOptionError', 'SPS_INVALID_OPTION', /must be a PySpark DataFrame or RDD, got list/],
    unknown: ['InvalidOptionError', 'SPS_INVALID_OPTION', /"no_such_option": is not an option of Cluster; known: partitions/],
    session_owned: ['InvalidOptionError', 'SPS_INVALID_OPTION', /"max_failures": cannot be given from Python/],
    bad_value: ['InvalidOptionError', 'SPS_INVALID_OPTION', /"start_timeout_ms": must be an integer/],
    node: ['DependencyMissingError', 'SPS_DEPENDENCY_MISSING', /SPS_NODE=\/nonexistent\/node is not an executable file/],
    library: ['DependencyMissingError', 'SPS_DEPENDENCY_MISSING', /SPS_NODE_PACKAGE=\/nonexistent\/package is not a built spark-partition-server package/],
  };
  for (const [name, [type, code, message]] of Object.entries(expect)) {
    t.is(f[name]!.type, type, name);
    t.is(f[name]!.code, code, name);
    t.regex(f[name]!.message!, message, name);
    t.is(f[name]!.jobs, 0, `${name}: no Spark job ran`);
  }
});

test('a runner that cannot start in the given session (stopped) fails start() with its reason, not a ready timeout', async (t) => {
  const f = (await shared.findings('runner_failed')) as { type: string | null; code?: string; message?: string };
  t.is(f.type, 'SparkPartitionServerError');
  t.is(f.code, 'SPS_SPARK_START');
  t.regex(f.message!, /^the Spark runner hosted by the Python process failed to start: SpsError: the SparkSession is stopped/);
});

interface Keyed {
  owners: Record<string, { partition_of: number; answer: { partition: number; has: boolean } }>;
  bad: { code: string; message: string; is_value_error: boolean };
  placed: Record<string, [string | number, number][]>;
}

test('keys from PySpark: partition_by places a DataFrame (string and long keys) and an RDD of dicts where partition_of says; request_by_key reaches the owner', async (t) => {
  const f = (await shared.findings('keyed')) as Record<string, Keyed> & { missing: { code: string; message: string } };
  for (const [name, rows] of [
    ['strings', 60],
    ['longs', 60],
    ['dicts', 30],
  ] as const) {
    const k = f[name]!;
    for (const [key, o] of Object.entries(k.owners)) t.deepEqual(o.answer, { partition: o.partition_of, has: true }, `${name}: ${key}`);
    t.like(k.bad, { code: 'SPS_BAD_KEY', is_value_error: true }, name);
    t.regex(k.bad.message, /key 1\.5: a key must be a string or an integer/);
    const placed = Object.entries(k.placed);
    t.is(placed.length, 3, name);
    t.is(placed.flatMap(([, r]) => r).length, rows, `${name}: every row served once`);
    t.true(placed.filter(([, r]) => r.length > 0).length >= 2, `${name}: the keys spread over the partitions`);
    for (const [p, r] of placed) for (const [key, owner] of r) t.is(owner, Number(p), `${name}: key ${key} is on partition ${p}`);
  }
  t.regex(f.missing.message, /partitionBy: the source has no column 'nope'/);
});

test('example 08: the seed demo from PySpark runs and prints the results', async (t) => {
  const child = spawnPython(t, [`${ROOT}examples/08-pyspark.py`], ROOT);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.resume();
  const code = await new Promise((resolve) => child.once('exit', resolve));
  t.is(code, 0);
  t.regex(out, /partition 0 holds 500 numbers, from 0/);
  t.regex(out, /results: \[\{'partition': 0, 'count': 500, 'sum': 124750\}, \{'partition': 1, 'count': 500, 'sum': 374750\}\]/);
});

type Served = {
  partitions: number;
  summary: Record<string, { format: string; count: number; sum: number }>;
  results: Record<string, { count: number; sum: number }[]>;
  echo: unknown;
};

test("PySpark data: a DataFrame with a Python UDF join in 3 partitions as Arrow, summed against Spark's aggregate; an RDD of dicts; empty partitions; partitions=", async (t) => {
  const f = (await shared.findings('data_kinds')) as Record<string, Served> & { expected: { sum: number; count: number } };
  const total = (s: Served, k: 'count' | 'sum'): number => Object.values(s.summary).reduce((a, x) => a + x[k], 0);
  for (const name of ['arrow', 'rows']) {
    const s = f[name]!;
    t.is(s.partitions, 3, name);
    t.true(
      Object.values(s.summary).every((x) => x.format === 'arrow'),
      `${name}: the DataFrame's rows came as Arrow`,
    );
    t.is(total(s, 'sum'), f.expected.sum, `${name}: the servers' sum is Spark's`);
    t.is(total(s, 'count'), f.expected.count, name);
    t.deepEqual(
      Object.values(s.results).map((r) => r[0]!.sum),
      Object.values(s.summary).map((x) => x.sum),
      `${name}: each partition's result collected once`,
    );
    t.deepEqual(s.echo, { a: [1, 2.5, 'x'] });
  }
  t.is(f.dicts!.partitions, 2);
  t.true(Object.values(f.dicts!.summary).every((x) => x.format === 'json'));
  t.is(total(f.dicts!, 'sum'), 4950);
  t.is(total(f.dicts!, 'count'), 100);
  t.is(f.empty_df!.partitions, 4);
  t.is(total(f.empty_df!, 'count'), 2);
  t.true(
    Object.values(f.empty_df!.summary).some((x) => x.count === 0),
    'an empty partition got a server',
  );
  t.is(Object.keys(f.empty_df!.results).length, 4);
  t.is(f.empty_rdd!.partitions, 3);
  t.is(total(f.empty_rdd!, 'count'), 0);
  t.is(Object.keys(f.empty_rdd!.results).length, 3);
  t.is(f.repartitioned!.partitions, 2);
  t.is(total(f.repartitioned!, 'sum'), f.expected.sum);
});

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the Python process SIGKILLed leaves nothing: its Node driver, the nats-server and the Node workers go', async (t) => {
  const child = spawnPython(t, ['killed.py']);
  child.stderr.resume();
  let out = '';
  const pids = await new Promise<{ driver: number; children: number[]; workers: number[] }>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const line = out.split('\n').find((l) => l.startsWith('SPS-PIDS '));
      if (line) resolve(JSON.parse(line.slice('SPS-PIDS '.length)) as { driver: number; children: number[]; workers: number[] });
    });
    child.once('exit', (code) => reject(new Error(`killed.py exited with ${code} before it served`)));
  });
  const started = [pids.driver, ...pids.children, ...pids.workers];
  t.true(pids.children.length >= 1, 'the driver runs a nats-server');
  t.is(pids.workers.length, 2);
  t.true(started.every(alive));
  process.kill(child.pid!, 'SIGKILL');
  // Each goes when the process it is tied to does (stdin EOF, parent-death signal, Spark's JVM).
  const deadline = Date.now() + 60_000;
  while (started.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(started.filter(alive), [], 'every process the Python process started is gone');
});

test('a Node worker SIGKILLed under PySpark (local[4,4]) is retried by Spark, serves again, and stop() collects every result once', async (t) => {
  const f = (await shared.findings('worker_killed')) as { attempts: number[]; state: string; served: number[]; results: Record<string, unknown[]> };
  t.true(f.attempts[1]! > f.attempts[0]!, 'a new attempt of partition 1');
  t.is(f.state, 'serving');
  t.deepEqual(f.served, [500, 501, 502]);
  t.deepEqual(f.results, {
    0: [{ partition: 0, count: 500, sum: 124750 }],
    1: [{ partition: 1, count: 500, sum: 374750 }],
  });
});

test('KeyboardInterrupt in start(), once the Spark job runs, stops what started: the job, the Node driver; the session goes on', async (t) => {
  const f = await shared.findings('interrupted');
  t.deepEqual(f, { interrupted: true, active_jobs: [], driver_alive: false, next_job: 6 });
});

type NotebookCell = { source: string; outputs: { output_type: string; name?: string; text?: string; data?: Record<string, string> }[] };

test('example 09: the notebook runs in a real Jupyter kernel (nbclient); start() shows partitions serving 2/2 in place, not log lines', async (t) => {
  const notebook = `${ROOT}examples/09-pyspark-notebook.ipynb`;
  const child = spawnPython(t, ['run_notebook.py', notebook]);
  let out = '';
  let err = '';
  let kernel: number | undefined;
  // The kernel has a session of its own (jupyter_client's launcher): ended by pid if the test ends first.
  t.teardown(() => {
    if (kernel !== undefined && alive(kernel)) process.kill(kernel, 'SIGKILL');
  });
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    const line = /^SPS-KERNEL (\d+)$/m.exec(out);
    if (line) kernel = Number(line[1]);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-8000)));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  const line = out.split('\n').find((l) => l.startsWith('SPS-FINDINGS '));
  t.is(code, 0, err);
  const cells = JSON.parse(line!.slice('SPS-FINDINGS '.length)) as NotebookCell[];
  const start = cells.find((c) => c.source.includes('c.start()'))!;
  const outputs = start.outputs.map((o) => [o.output_type, o.data?.['text/plain'] ?? o.text]);
  // Where no uWebSockets.js binary loads for this Node (the kernel's driver runs it too), the run says
  // so once, in plain text; no worker's log line shows.
  const fallback = outputs.filter(([kind, text]) => kind === 'stream' && /^workers on this host: HTTP served by node:http/m.test(text ?? ''));
  t.is(fallback.length, uwsUnavailable() === undefined ? 0 : 1, JSON.stringify(outputs));
  t.deepEqual(
    outputs.filter((o) => !fallback.includes(o)),
    [['display_data', 'spark-partition-server: partitions serving 2/2']],
    "start()'s one output is its progress line, updated in place",
  );
  // A cell's value is its execute_result; anything the cell also printed is shown if it is missing.
  const valueOf = (marker: string): string => {
    const cell = cells.find((c) => c.source.includes(marker))!;
    const value = cell.outputs.find((o) => o.output_type === 'execute_result')?.data?.['text/plain'];
    t.truthy(value, `${marker}: ${JSON.stringify(cell.outputs)}`);
    return value ?? '';
  };
  t.is(valueOf('request_all'), '{0: 500, 1: 500}');
  t.regex(valueOf('c.stop()'), /\{'partition': 0, 'count': 500, 'sum': 124750\},\s+\{'partition': 1, 'count': 500, 'sum': 374750\}/);
  t.false(kernel !== undefined && alive(kernel), 'the kernel ended with the notebook');
});

test('a Spark Connect client session (a real Connect server from sbin/start-connect-server.sh): a DataFrame of it serves, answers as Spark counts, survives a SIGKILLed worker, stops clean; a barrier run with cache_result on an attached application, twice; a tag cancels a run; an RDD is refused', async (t) => {
  // A second JVM (the Connect server) starting on a loaded machine takes minutes, not seconds.
  t.timeout(900_000);
  type Summary = { format: string; batches: number; count: number; sum: number };
  type Failure = { type: string; code: string; message: string } | null;
  const f = (await runScript(t, 'spark_connect.py')) as {
    session: string;
    spark_total: { count: number; sum: number };
    partitions: number;
    all: Record<string, Summary>;
    each: Record<string, Summary>;
    echo: unknown;
    attempts: number[];
    state: string;
    served_again: Summary;
    killed_pid_left: boolean;
    results: Record<string, { partition: number; count: number; sum: number }[]>;
    result_df: { partition: number; count: number; sum: number }[];
    result_rdd: Failure;
    tagged_after_stop: string[];
    left: number[];
    cancel_interrupted: number;
    cancel_stop: Failure;
    cancel_left: number[];
    rdd: Failure;
    after: number;
    server_pids: number;
    server_left: number[];
    barrier_cached: { summary: Record<string, Summary>; result_df: { partition: number; count: number; sum: number }[]; same_driver: boolean }[];
    barrier_driver_left: boolean;
  };
  t.regex(f.session, /^pyspark\.sql\.connect\./, 'the client session is a Connect one');
  t.deepEqual(f.spark_total, { count: 3000, sum: 1498500 }, "Spark's own aggregate on the session");
  t.is(f.partitions, 3, "the DataFrame's own partitions");
  t.deepEqual(Object.keys(f.all), ['0', '1', '2']);
  t.deepEqual(f.each, f.all, 'request by partition answers as request_all');
  const served = Object.values(f.all);
  for (const s of served) {
    t.is(s.format, 'arrow', 'rows arrive as Arrow record batches');
    t.true(s.count > 0, 'every partition serves rows');
  }
  t.deepEqual(
    served.reduce((a, s) => ({ count: a.count + s.count, sum: a.sum + s.sum }), { count: 0, sum: 0 }),
    f.spark_total,
    "the partitions hold every row once: their counts and sums add up to Spark's",
  );
  t.deepEqual(f.echo, { from: 'connect' });
  t.true(f.attempts[1]! > f.attempts[0]!, 'Spark retried the task of the killed worker');
  t.is(f.state, 'serving');
  t.false(f.killed_pid_left);
  t.deepEqual(f.served_again, f.all['1'], 'the retried partition serves the same rows again');
  const results = [0, 1, 2].map((p) => ({ partition: p, count: f.all[p]!.count, sum: f.all[p]!.sum }));
  t.deepEqual(f.results, { 0: [results[0]], 1: [results[1]], 2: [results[2]] }, "each partition's result, collected once");
  t.deepEqual(f.result_df, results, 'result() as a DataFrame of the Connect session');
  t.like(f.result_rdd, { type: 'UnsupportedError', code: 'SPS_UNSUPPORTED' });
  t.deepEqual(f.tagged_after_stop, [], "no operation of the session holds the run's tag after stop()");
  t.deepEqual(f.left, [], 'no Node worker, Node driver or nats-server of the run is left');
  t.is(f.cancel_interrupted, 1, "interruptTag with the run's tag interrupts its one job");
  t.truthy(f.cancel_stop, 'stop() reports the run that was cancelled under it');
  t.regex(f.cancel_stop!.message, /OPERATION_CANCELED|cancel/i);
  t.deepEqual(f.cancel_left, [], 'nothing of the cancelled run is left');
  t.is(f.rdd?.type, 'UnsupportedError');
  t.is(f.rdd?.code, 'SPS_UNSUPPORTED');
  t.regex(f.rdd!.message, /^an RDD cannot run on a Spark Connect session/);
  t.is(f.barrier_cached.length, 2);
  for (const [i, run] of f.barrier_cached.entries()) {
    const sums = Object.entries(run.summary).map(([p, s]) => ({ partition: Number(p), count: s.count, sum: s.sum }));
    t.is(sums.length, 3, `barrier run ${i}: every partition serves`);
    t.deepEqual(
      sums.reduce((a, s) => ({ count: a.count + s.count, sum: a.sum + s.sum }), { count: 0, sum: 0 }),
      { count: 600, sum: 1795 },
      `barrier run ${i}: every row once`,
    );
    t.deepEqual(run.result_df, sums, `barrier run ${i}: result() is the persisted result of cache_result`);
    t.true(run.same_driver, `barrier run ${i}: on the attached application's Node driver`);
  }
  t.false(f.barrier_driver_left, "the attached application's Node driver ended with close()");
  t.is(f.after, 10, 'the session goes on');
  t.true(f.server_pids >= 2, 'the server script and its JVM were found');
  t.deepEqual(f.server_left, [], 'every process of the Connect server is gone');
});

test('the Python process SIGKILLed on a Spark Connect session leaves nothing: its Node driver, nats-server and workers go, and its job on the surviving Connect server ends with no task left running', async (t) => {
  t.timeout(900_000);
  // The Connect server outlives its client, as a shared one would; the test ends it (its process
  // group is killed if the test fails first).
  const keeper = spawnPython(t, ['connect_server.py']);
  const server = await lineOf<{ port: number; ui: number; pids: number[]; work: string }>(keeper, 'SPS-CONNECT', 'connect_server.py');
  const child = spawnPython(t, ['connect_killed.py', String(server.port)]);
  const run = await lineOf<{ driver: number; children: number[]; workers: number[]; tag: string }>(child, 'SPS-PIDS', 'connect_killed.py');
  type Jobs = { waited_s: number; jobs: { status: string; failed_tasks: number; killed_tasks: number }[]; active_tasks: number; fresh_count?: number };
  const jobs = (mode: string, boundS: number): Promise<Jobs> =>
    lineOf<Jobs>(spawnPython(t, ['connect_jobs.py', String(server.port), String(server.ui), run.tag, mode, String(boundS)]), 'SPS-FINDINGS', 'connect_jobs.py');
  const started = [run.driver, ...run.children, ...run.workers];
  t.true(run.children.length >= 1, 'the driver runs a nats-server');
  t.is(run.workers.length, 3);
  t.true(started.every(alive));
  const before = await jobs('running', 120);
  t.is(before.jobs.filter((j) => j.status === 'RUNNING').length, 1, "the run's job runs on the Connect server under its tag");
  const killedAt = Date.now();
  process.kill(child.pid!, 'SIGKILL');
  // The driver and its nats-server go with the Python process (stdin EOF, parent-death signal);
  // the workers when their bus is gone for their reconnect window (reconnectWindowMs, 30 s).
  const gone: Record<string, number> = {};
  const deadline = Date.now() + 180_000;
  while (started.some(alive) && Date.now() < deadline) {
    for (const [what, pids] of Object.entries({ driver: [run.driver, ...run.children], workers: run.workers }))
      if (gone[what] === undefined && !pids.some(alive)) gone[what] = (Date.now() - killedAt) / 1000;
    await new Promise((r) => setTimeout(r, 200));
  }
  const goneS = (Date.now() - killedAt) / 1000;
  t.deepEqual(started.filter(alive), [], 'every process the Python process started is gone');
  const after = await jobs('ended', 420);
  const endedS = (Date.now() - killedAt) / 1000;
  t.log(
    `SIGKILL → driver and nats-server gone: ${gone.driver?.toFixed(1)} s, workers: ${goneS.toFixed(1)} s; → job ended, no task running: ${endedS.toFixed(1)} s`,
    JSON.stringify(after),
  );
  t.false(
    after.jobs.some((j) => j.status === 'RUNNING'),
    "no job of the run's tag runs on the Connect server",
  );
  t.is(after.active_tasks, 0, 'no task runs on any executor of the Connect server');
  // Tasks whose worker lost the bus end without an error: Spark retries none of them, and the
  // job ends within the workers' reconnect window (30 s) and a margin for a loaded machine.
  t.deepEqual(
    after.jobs.map((j) => j.failed_tasks),
    after.jobs.map(() => 0),
    'no task of the run failed, so Spark retried none',
  );
  t.true(endedS < 150, `the job ended ${endedS.toFixed(1)} s after the SIGKILL`);
  t.is(after.fresh_count, 10, 'the Connect server goes on: a fresh client session runs a job');
  const stopped = lineOf<{ left: number[] }>(keeper, 'SPS-STOPPED', 'connect_server.py');
  keeper.stdin.end();
  const { left } = await stopped;
  t.deepEqual(left, [], 'every process of the Connect server is gone');
  t.false(existsSync(server.work), 'and its work folder (the server log) with them');
  t.true(server.pids.length >= 2);
});
