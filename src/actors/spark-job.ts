import { assign, enqueueActions, setup } from 'xstate';

/**
 * The Spark job actor: the driver's view of the one Spark job that runs a cluster's partitions.
 *
 * It follows what the PySpark runner reports (tasks started and failed, result chunks, the job's
 * end), assembles each partition's result from its chunks, and turns the job's failure into the
 * partition that gave up. `running` → `finished` when the job ends; `failed` when Spark gives up on
 * it; on STOP it goes to `cancelling` (asking the runner to cancel, unless every result is already
 * in and the job is ending by itself) and ends `cancelled` or `finished`.
 *
 * Pure definition: the reports to the supervisor and the cancel request are supplied with
 * `machine.provide()`.
 */

/** Input of the Spark job actor. */
export interface SparkJobInput {
  partitions: number;
  maxFailures: number;
}

/** A task's worker process as the runner reported it. */
export interface SparkTask {
  attempt: number;
  pid: number;
  /** True when the worker runs on this machine (its pid can be signalled). */
  local: boolean;
}

/** Context of the Spark job actor. */
export interface SparkJobContext extends SparkJobInput {
  tasks: Record<number, SparkTask>;
  /** Result chunks received so far, by partition. */
  chunks: Record<number, unknown[]>;
  /** Partitions whose whole result arrived. */
  reported: number[];
  /** The persisted result dataset (option cacheResult), once the job finished. */
  dataset?: { id: string; records: number };
}

/** Events the Spark job actor accepts (the runner's reports, and STOP). */
export type SparkJobEvent =
  | { type: 'TASK_STARTED'; partition: number; attempt: number; pid: number; local: boolean }
  | { type: 'TASK_FAILED'; partition: number; attempt: number; error: string }
  | { type: 'RESULT_CHUNK'; partition: number; attempt: number; records: unknown[]; last: boolean }
  | { type: 'JOB_FINISHED'; dataset?: { id: string; records: number } }
  | { type: 'JOB_FAILED'; error: string; cancelled: boolean; partition?: number; failures?: number }
  | { type: 'STOP' };

/** True once every partition's result arrived (the job then ends by itself). */
export function allReported(ctx: SparkJobContext): boolean {
  return ctx.reported.length === ctx.partitions;
}

/** The Spark job state machine; provide its reports and `requestCancel` before starting it. */
export const sparkJobMachine = setup({
  types: {
    input: {} as SparkJobInput,
    context: {} as SparkJobContext,
    events: {} as SparkJobEvent,
  },
  actions: {
    /** An attempt of a partition failed (Spark will retry it). */
    reportAttemptFailed: (_, _params: { partition: number; attempt: number; error: string }) => {},
    /** A partition's whole result arrived. */
    reportResult: (_, _params: { partition: number; attempt: number; records: unknown[] }) => {},
    /** Spark gave up on the job; blamed on this partition. */
    reportGaveUp: (_, _params: { partition: number; failures: number; error: string }) => {},
    /** Asks the runner to cancel the job group. */
    requestCancel: () => {},
    taskStarted: assign({
      tasks: ({ context, event }) =>
        event.type === 'TASK_STARTED' ? { ...context.tasks, [event.partition]: { attempt: event.attempt, pid: event.pid, local: event.local } } : context.tasks,
    }),
    taskFailed: assign({
      tasks: ({ context, event }) => {
        if (event.type !== 'TASK_FAILED' || context.tasks[event.partition]?.attempt !== event.attempt) return context.tasks;
        const { [event.partition]: _gone, ...rest } = context.tasks;
        return rest;
      },
    }),
    addChunk: assign(({ context, event }) => {
      if (event.type !== 'RESULT_CHUNK') return {};
      const records = [...(context.chunks[event.partition] ?? []), ...event.records];
      if (!event.last) return { chunks: { ...context.chunks, [event.partition]: records } };
      const { [event.partition]: _done, ...chunks } = context.chunks;
      return { chunks, reported: [...context.reported, event.partition] };
    }),
    keepDataset: assign({ dataset: ({ event }) => (event.type === 'JOB_FINISHED' ? event.dataset : undefined) }),
  },
  guards: {
    lastChunk: ({ event }) => event.type === 'RESULT_CHUNK' && event.last,
    wasCancelled: ({ event }) => event.type === 'JOB_FAILED' && event.cancelled,
  },
}).createMachine({
  id: 'sparkJob',
  context: ({ input }) => ({ ...input, tasks: {}, chunks: {}, reported: [] }),
  on: {
    TASK_STARTED: { actions: 'taskStarted' },
    TASK_FAILED: {
      actions: ['taskFailed', { type: 'reportAttemptFailed', params: ({ event }) => ({ partition: event.partition, attempt: event.attempt, error: event.error }) }],
    },
    RESULT_CHUNK: [
      {
        guard: 'lastChunk',
        actions: [
          { type: 'reportResult', params: ({ context, event }) => ({ partition: event.partition, attempt: event.attempt, records: [...(context.chunks[event.partition] ?? []), ...event.records] }) },
          'addChunk',
        ],
      },
      { actions: 'addChunk' },
    ],
  },
  initial: 'running',
  states: {
    running: {
      on: {
        JOB_FINISHED: { target: 'finished', actions: 'keepDataset' },
        JOB_FAILED: [
          { guard: 'wasCancelled', target: 'cancelled' },
          {
            target: 'failed',
            actions: {
              type: 'reportGaveUp',
              params: ({ context, event }) => ({
                // Spark names the task that failed too often; without it, blame a partition still owed.
                partition: event.partition ?? Array.from({ length: context.partitions }, (_, p) => p).find((p) => !context.reported.includes(p)) ?? 0,
                failures: event.failures ?? context.maxFailures,
                error: event.error,
              }),
            },
          },
        ],
        STOP: 'cancelling',
      },
    },
    cancelling: {
      // Once every result is in the job ends by itself; cancelling then would only race with it.
      entry: enqueueActions(({ context, enqueue }) => {
        if (!allReported(context)) enqueue('requestCancel');
      }),
      on: {
        JOB_FINISHED: { target: 'finished', actions: 'keepDataset' },
        JOB_FAILED: 'cancelled',
      },
    },
    finished: { type: 'final' },
    failed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});
