/**
 * What a worker process imports before it touches its rows: the worker runtime and a server module
 * (given as a path). Run compiled with plain node, it prints `BENCH_JSON {"importMs", "sinceStartMs"}`
 * and exits: the import time, and the time since the process began.
 */
import { pathToFileURL } from 'node:url';

const server = process.argv[2];
if (!server) throw new Error('usage: footprint-probe.js <server module path>');
const t0 = performance.now();
await import('../../src/worker/partition-host.js');
await import(pathToFileURL(server).href);
const t1 = performance.now();
process.stdout.write(`BENCH_JSON ${JSON.stringify({ importMs: t1 - t0, sinceStartMs: t1 })}\n`);
