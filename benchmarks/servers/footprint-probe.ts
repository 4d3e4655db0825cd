/**
 * What a worker process imports before it touches its rows: the worker runtime and a server module
 * (given as a path). Run compiled, it prints `BENCH_JSON {"importMs", "sinceStartMs", "cpuMs"}` and
 * exits: the import time, the time since the process began, and the CPU the process has used (its
 * start included).
 */
import { pathToFileURL } from 'node:url';

const server = process.argv[2];
if (!server) throw new Error('usage: footprint-probe.js <server module path>');
const t0 = performance.now();
await import('../../src/worker/partition-host.js');
await import(pathToFileURL(server).href);
const t1 = performance.now();
const cpu = process.cpuUsage();
process.stdout.write(`BENCH_JSON ${JSON.stringify({ importMs: t1 - t0, sinceStartMs: t1, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
