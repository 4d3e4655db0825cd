/**
 * What `sps run` shows while a cluster runs, driven only by the cluster's events (`member`,
 * `state`, `progress`, `spark`): on a terminal a live bar (partitions serving k/N, attempts,
 * restarts, elapsed), otherwise one JSON object per line, so a program can follow the run.
 */
// cli-progress: the most used terminal progress bar for Node, plain JavaScript with one small
// dependency, whose multi-bar mode prints log lines above a live bar (worker output, retries);
// pinned (3.12.0) like every dependency.
import cliProgress from 'cli-progress';
import type { Cluster } from '../driver/cluster.js';
import type { ClusterState, MemberEvent, SparkEvent } from '../driver/cluster-events.js';

/** Where `sps run` writes its progress and notes (stderr; stdout holds only the results). */
export interface RunView {
  /** A worker's output line. */
  log(line: string): void;
  /** A note of the CLI itself (`running`, `credentials`, `stopping`, `stopped`, `error`), with its fields. */
  note(event: string, text: string, fields?: Record<string, unknown>): void;
  /** Ends the display (the bar's last state stays on screen); later lines are written plainly. Idempotent. */
  close(): void;
}

/** `bar` on a terminal, `json` lines otherwise. */
export type ViewMode = 'bar' | 'json';

function memberText(e: MemberEvent): string {
  const why = e.reason ? `: ${e.reason}` : '';
  switch (e.kind) {
    case 'replaced':
      return `partition ${e.partition}: attempt ${e.previousAttempt} replaced by attempt ${e.attempt}${why}`;
    case 'lost':
      return `partition ${e.partition}: lost after ${e.failures} failed attempts${why}`;
    default:
      return `partition ${e.partition}: attempt ${e.attempt} ${e.kind}${why}`;
  }
}

function sparkText(e: SparkEvent): string {
  if (e.type === 'job_failed') return `Spark job ${e.cancelled ? 'cancelled' : 'failed'}${e.error ? `: ${e.error}` : ''}`;
  return `Spark job ${e.type === 'job_started' ? 'started' : 'finished'}${e.group ? ` (${e.group})` : ''}`;
}

/** JSON-safe fields of an event (an Error becomes its message and code). */
function plain(fields: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).map(([k, v]) => [k, v instanceof Error ? { message: v.message, code: (v as { code?: unknown }).code } : v] as const),
  );
}

/** One JSON object per line: `{ event, t (ms since the run began), ...fields }`. */
function jsonView(cluster: Cluster, out: NodeJS.WritableStream): RunView {
  const began = performance.now();
  const write = (event: string, fields: object): void => {
    out.write(JSON.stringify({ event, t: Math.round(performance.now() - began), ...plain(fields) }) + '\n');
  };
  const on = {
    member: (e: MemberEvent) => write('member', e),
    state: (e: object) => write('state', e),
    progress: (e: object) => write('progress', e),
    spark: (e: SparkEvent) => write('spark', e),
  };
  for (const [name, listener] of Object.entries(on)) cluster.on(name as 'member', listener as (e: MemberEvent) => void);
  return {
    log: (line) => write('log', { line }),
    note: (event, _text, fields = {}) => write(event, fields),
    close: () => {
      for (const [name, listener] of Object.entries(on)) cluster.off(name as 'member', listener as (e: MemberEvent) => void);
    },
  };
}

/** A live bar on the terminal; notes and worker lines scroll above it. */
function barView(cluster: Cluster, out: NodeJS.WritableStream): RunView {
  const multibar = new cliProgress.MultiBar(
    {
      stream: out,
      format: ' {phase} |{bar}| {value}/{total} {what} | attempts {attempts} | restarts {restarts} | {duration_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const total = cluster.partitions;
  const states = new Map<number, string | undefined>();
  let attempts = 0;
  let restarts = 0;
  let phase: ClusterState = cluster.state;
  let stopping = false;
  const bar = multibar.create(total, 0, { phase, what: 'serving', attempts, restarts });
  const serving = (): number => [...states.values()].filter((s) => s === 'serving').length;
  const redraw = (value = serving()): void => bar.update(value, { phase, what: stopping ? 'results' : 'serving', attempts, restarts });
  let closed = false;
  // After close, a line goes straight to the stream (an error after the stop, say).
  const say = (text: string): void => (closed ? void out.write(`sps: ${text}\n`) : multibar.log(`sps: ${text}\n`));
  const on = {
    member: (e: MemberEvent) => {
      states.set(e.partition, e.state);
      if (e.kind === 'registered') attempts++;
      if (e.kind === 'replaced') restarts++;
      if (e.kind === 'replaced' || e.kind === 'failed' || e.kind === 'lost') say(memberText(e));
      if (!stopping) redraw();
    },
    state: (e: { state: ClusterState; error?: Error }) => {
      phase = e.state;
      if (e.state === 'stopping') stopping = true;
      if (e.error) say(`cluster ${e.state}: ${e.error.message}`);
      bar.update({ phase });
    },
    progress: (e: { phase: 'start' | 'stop'; done: number }) => {
      if (e.phase === 'stop') stopping = true;
      redraw(e.done);
    },
    // Stage progress changes with every task: the JSON lines carry it, the terminal only the job's events.
    spark: (e: SparkEvent) => (e.type === 'stage' ? undefined : say(sparkText(e))),
  };
  for (const [name, listener] of Object.entries(on)) cluster.on(name as 'member', listener as (e: MemberEvent) => void);
  return {
    log: (line) => (closed ? void out.write(`${line}\n`) : multibar.log(`${line}\n`)),
    note: (_event, text) => say(text),
    close: () => {
      if (closed) return;
      closed = true;
      for (const [name, listener] of Object.entries(on)) cluster.off(name as 'member', listener as (e: MemberEvent) => void);
      multibar.update();
      multibar.stop();
    },
  };
}

/** Attaches the display to the cluster's events. */
export function attachView(cluster: Cluster, mode: ViewMode, out: NodeJS.WritableStream = process.stderr): RunView {
  return mode === 'bar' ? barView(cluster, out) : jsonView(cluster, out);
}
