import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildTests, TEST_BUILD } from './scripts/build-tests.mjs';

/**
 * The test runner's settings. Files run three at a time; the slow ones (Spark applications, hosts
 * in network namespaces, the packed package) are spread through the run instead of meeting at its
 * start or end: each starts JVMs or daemons that need the CPU in their first minutes, so two of
 * them at most start together while quick files fill the other slots.
 */
const PLACE = {
  'multi-host': '0',
  'spark-local': '1',
  'pyspark-package': 'c',
  'spark-standalone': 'f',
  package: 'h',
  'spark-thread': 'i',
  'spark-arrow': 'k',
  'spark-keyed': 'm',
};

/** The key a test file sorts by: its place above, else its name. */
function key(file) {
  const name = /([^/]+)\.test\.ts$/.exec(file)?.[1] ?? file;
  return PLACE[name] !== undefined ? `${PLACE[name]}~${name}` : name;
}

/**
 * The class archive `scripts/setup.sh --jvm-archive` writes (npm test runs it): each JVM maps the
 * Spark classes a session loads instead of reading and checking them from the jars. A JVM that
 * cannot use it (another Java, other jars) starts as it would without, silently.
 */
const archive = fileURLToPath(new URL('.cache/jvm/spark-classes.jsa', import.meta.url));
const archiveFlags = existsSync(archive) ? ` -XX:SharedArchiveFile=${archive} -Xlog:cds=off -Xlog:cds+dynamic=off` : '';

/**
 * The tests run as JavaScript: every run first brings the suite's build up to date (only changed
 * files; see scripts/build-tests.mjs), and @ava/typescript loads test/x.test.ts from there. A test
 * process then starts without a TypeScript loader of its own (1 s of CPU less each), while paths
 * built from `import.meta.url` still name the sources.
 */
await buildTests();

export default {
  files: ['test/**/*.test.ts'],
  typescript: { rewritePaths: { 'test/': `${TEST_BUILD}/test/` }, compile: false },
  environmentVariables: {
    // Every JVM the suite starts (Spark drivers and executors, standalone daemons, the Connect
    // server) lives for seconds to minutes: with the C1 compiler only and the serial collector it
    // spends far less CPU warming up, on a machine the suite keeps busy (same Spark, same results).
    JAVA_TOOL_OPTIONS: `${process.env.JAVA_TOOL_OPTIONS ?? ''} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC${archiveFlags}`.trim(),
  },
  nodeArguments: ['--enable-source-maps'],
  workerThreads: false,
  timeout: '3m',
  concurrency: 3,
  sortTestFiles: (a, b) => key(a).localeCompare(key(b)),
};
