import { networkInterfaces } from 'node:os';

/** True for a `local`, `local[N]` or `local[N,F]` master, whose executors all run in the driver's JVM. */
export function isLocalMaster(master: string): boolean {
  return /^local(\[[^\]]*\])?$/.test(master.trim());
}

/**
 * The address executors reach the driver at, as Spark chooses it: `spark.driver.host` when set,
 * else `SPARK_LOCAL_IP`, else this host's first non-loopback IPv4 address (as Spark's own fallback
 * does when the host name resolves to loopback).
 */
export function driverAddress(conf: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv = process.env): string {
  const configured = conf['spark.driver.host'] ?? env.SPARK_LOCAL_IP;
  if (configured) return configured;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** The address the driver listens on: `spark.driver.bindAddress` when set, else {@link driverAddress}. */
export function driverBindAddress(conf: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv = process.env): string {
  return conf['spark.driver.bindAddress'] ?? driverAddress(conf, env);
}
