/**
 * The Python package on a Spark Connect server on another host: the server (pyspark's own
 * sbin/start-connect-server.sh, local master) runs in a network namespace with its own address, the
 * client session in the root namespace. Skipped, saying why, where namespaces cannot be made;
 * the namespace and every process in it are removed, also when the test fails.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { canMakeNamespaces, createHosts, leftovers } from './helpers/netns.js';
import { PYTHON, ROOT, SCRIPTS_DIR, lineOf, runScript } from './helpers/python-script.js';

const probe = await canMakeNamespaces();

if (!probe.ok) {
  test.skip(`a Spark Connect server on another host (skipped: ${probe.why})`, () => {});
} else {
  test('a Spark Connect server on another host: the bus listens at the client host’s address on the route to it, the partitions run and serve there, answers add up to Spark’s, results come back once', async (t) => {
    // A Connect server's JVM starting on a loaded machine takes minutes.
    t.timeout(900_000);
    const hosts = await createHosts(1);
    try {
      const host = hosts.hosts[0]!;
      const env = { ...process.env, SPS_CONNECT_BIND: host.address, SPS_NODE_PACKAGE: ROOT, PYSPARK_PYTHON: PYTHON };
      const keeper = hosts.exec(host, PYTHON, ['connect_server.py'], { cwd: SCRIPTS_DIR, env, stdio: 'pipe' });
      const server = await lineOf<{ port: number; work: string }>(keeper, 'SPS-CONNECT', 'connect_server.py');
      const f = (await runScript(t, 'connect_remote.py', { SPS_CONNECT_URL: `sc://${host.address}:${server.port}` })) as {
        spark_total: { count: number; sum: number };
        bus_host: string | null;
        summary: Record<string, { count: number; sum: number }>;
        hosts: string[];
        members: { partition: number; host: string; state: string }[];
        results: Record<string, { partition: number; count: number; sum: number }[]>;
      };
      t.is(f.bus_host, hosts.driverAddress, "the client host's address on the route to the server");
      t.deepEqual(f.hosts, [host.address], "every partition's HTTP server is on the Connect server's host");
      t.deepEqual(
        f.members.map((m) => [m.partition, m.host, m.state]),
        [0, 1, 2].map((p) => [p, host.address, 'serving']),
      );
      const served = Object.values(f.summary);
      t.deepEqual(
        served.reduce((a, s) => ({ count: a.count + s.count, sum: a.sum + s.sum }), { count: 0, sum: 0 }),
        f.spark_total,
        "the partitions hold every row once: their counts and sums add up to Spark's",
      );
      t.deepEqual(f.results, Object.fromEntries(Object.entries(f.summary).map(([p, s]) => [p, [{ partition: Number(p), count: s.count, sum: s.sum }]])));
      const stopped = lineOf<{ left: number[] }>(keeper, 'SPS-STOPPED', 'connect_server.py');
      keeper.stdin!.end();
      t.deepEqual((await stopped).left, [], 'every process of the Connect server is gone');
      t.false(existsSync(server.work), 'and its work folder (the server log) with them');
    } finally {
      await hosts.remove();
    }
    t.deepEqual(await leftovers(hosts.runId), [], 'namespaces or links left behind');
  });
}
