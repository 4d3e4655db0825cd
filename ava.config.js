/**
 * The test runner's settings. Files run three at a time, the longest first (longest processing
 * time first): the Spark applications, hosts in network namespaces, the benchmark smoke run and
 * the packed package each take minutes, mostly waiting on JVMs and processes; started last they
 * would leave one slot busy long after the quick files ended. Files not listed follow by name.
 */
const FIRST = [
  'pyspark-package',
  'multi-host',
  'spark-local',
  'spark-standalone',
  'bench',
  'logistic-regression',
  'spark-arrow',
  'faults',
  'examples',
  'cli',
  'spark-keyed',
  'package',
  'runner-bus',
  'spark-attach',
  'isolation',
  'collectives',
  'dashboard',
  'cluster',
  'worker-faults',
];

/** The key a test file sorts by: its place in FIRST, else its name after them. */
function key(file) {
  const name = /([^/]+)\.test\.ts$/.exec(file)?.[1] ?? file;
  const place = FIRST.indexOf(name);
  return place >= 0 ? `0~${String(place).padStart(3, '0')}` : `1~${name}`;
}

export default {
  files: ['test/**/*.test.ts'],
  environmentVariables: {
    // Every JVM the suite starts (Spark drivers and executors, standalone daemons, the Connect
    // server) lives for seconds to minutes: with the C1 compiler only and the serial collector it
    // spends far less CPU warming up, on a machine the suite keeps busy (same Spark, same results).
    JAVA_TOOL_OPTIONS: `${process.env.JAVA_TOOL_OPTIONS ?? ''} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC`.trim(),
  },
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '3m',
  concurrency: 3,
  sortTestFiles: (a, b) => key(a).localeCompare(key(b)),
};
