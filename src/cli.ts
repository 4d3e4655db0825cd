#!/usr/bin/env node
/**
 * `sps`: runs a cluster from the command line until Ctrl-C (or `--for`), then stops it and prints
 * each partition's result records as JSON lines.
 *
 *   sps run --server ./server.ts [--export name] [--partitions 4] [--range 1000 | --json rows.json]
 *           [--config '{"k":1}'] [--nats nats://127.0.0.1:4222] [--for 10s]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Cluster } from './api/cluster.js';
import { SparkPartitionServerError } from './errors.js';

const USAGE = `usage: sps run --server <module> [--export <name>] [--partitions <n>]
               [--range <end> | --json <file with a JSON array>] [--config <json>]
               [--nats <url>] [--for <duration: 30, 30s, 500ms, 2m>]`;

function fail(message: string): never {
  process.stderr.write(`sps: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== 'run') fail(command ? `unknown command "${command}"` : 'no command');
  const { values } = parseArgs({
    args: rest,
    options: {
      server: { type: 'string' },
      export: { type: 'string' },
      partitions: { type: 'string' },
      range: { type: 'string' },
      json: { type: 'string' },
      config: { type: 'string' },
      nats: { type: 'string' },
      for: { type: 'string' },
    },
  });
  if (!values.server) fail('--server is required');
  const num = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) fail(`--${name} must be a number, got "${v}"`);
    return n;
  };
  // What the usage promises: plain seconds, or a number with ms, s, m or h.
  const duration = (v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
    if (!m) fail(`--for must be a duration like 30, 30s, 500ms, 2m or 1h, got "${v}"`);
    const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
    return Number(m[1]) * unit;
  };
  let config: unknown;
  if (values.config) {
    try {
      config = JSON.parse(values.config);
    } catch (err) {
      fail(`--config is not JSON: ${(err as Error).message}`);
    }
  }
  const data = values.json
    ? (JSON.parse(readFileSync(values.json, 'utf8')) as unknown[])
    : values.range !== undefined
      ? { range: { end: num('range', values.range)! } }
      : undefined;
  const cluster = new Cluster({
    server: { module: values.server, export: values.export },
    partitions: num('partitions', values.partitions),
    data,
    config,
    natsUrl: values.nats,
  });
  const seconds = duration(values.for);
  await cluster.start();
  process.stderr.write(`sps: cluster ${cluster.id} running on ${cluster.natsUrl}\n`);
  for (const m of cluster.members) {
    process.stderr.write(`sps:   partition ${m.partition} attempt ${m.attempt} pid ${m.pid} ${m.port === null ? 'NATS only' : `http://${m.host}:${m.port}`}\n`);
  }
  await new Promise<void>((resolve) => {
    if (seconds !== undefined) setTimeout(resolve, seconds * 1000);
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  process.stderr.write('sps: stopping\n');
  await cluster.stop();
  for (const [partition, records] of [...cluster.result()].sort(([a], [b]) => a - b)) {
    for (const record of records) process.stdout.write(JSON.stringify({ partition, record }) + '\n');
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    const e = err as Error & { code?: string };
    process.stderr.write(`sps: ${err instanceof SparkPartitionServerError ? `[${e.code}] ` : ''}${e.message}\n`);
    process.exit(1);
  },
);
