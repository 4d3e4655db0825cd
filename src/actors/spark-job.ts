import { assign, enqueueActions, setup } from 'xstate';

/**
 * The Spark job actor: the driver's view of the one Spark job that runs a cluster's partitions.
 *
 * It follows what the PySpark runner reports (result chunks, the job's end), assembles each
 * partition's result from its chunks in sequence (a chunk out of order voids that partition's
 * partial result, so a gap can never pass for a whole result), and turns the job's failure into the
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

/** Context of the Spark job actor. */
export interface SparkJobContext extends SparkJobInput {
  /** Result chunks received so far, by partition: from which attempt, the next sequence number, the records. */
  chunks: Record<number, { attempt: number; next: number; records: unknown[] }>;
  /** Chunks that arrived out of sequence (their partition's partial result was dropped). */
  outOfSequence: number;
  /** Partitions whose whole result arrived. */
  reported: number[];
  /** The persisted result dataset (option cacheResult), once the job finished. */
  dataset?: { id: string; records: number };
}

/** Events the Spark job actor accepts (the runner's reports, and STOP). */
export type SparkJobEvent =
  | { type: 'RESULT_CHUNK'; partition: number; attempt: number; seq: number; records: unknown[]; last: boolean }
  | { type: 'JOB_FINISHED'; dataset?: { id: string; records: number } }
  | { type: 'JOB_FAILED'; error: string; cancelled: boolean; partition?: number; failures?: number }
  | { type: 'STOP' };

/** True when a chunk continues its partition's result: seq 0 starts one, later ones follow the same attempt in order. */
function inSequence(ctx: SparkJobContext, e: { partition: number; attempt: number; seq: number }): boolean {
  const partial = ctx.chunks[e.partition];
  return partial ? partial.attempt === e.attempt && partial.next === e.seq : e.seq === 0;
}

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
    /** A partition's whole result arrived. */
    reportResult: (_, _params: { partition: number; attempt: number; records: unknown[] }) => {},
    /** Spark gave up on the job; blamed on this partition. */
    reportGaveUp: (_, _params: { partition: number; failures: number; error: string }) => {},
    /** Asks the runner to cancel the job group. */
    requestCancel: () => {},
    addChunk: assign(({ context, event }) => {
      if (event.type !== 'RESULT_CHUNK' || event.partition >= context.partitions || context.reported.includes(event.partition)) return {};
      const { [event.partition]: partial, ...others } = context.chunks;
      if (!inSequence(context, event)) return { chunks: others, outOfSequence: context.outOfSequence + 1 };
      if (event.last) return { chunks: others, reported: [...context.reported, event.partition] };
      const records = [...(partial?.records ?? []), ...event.records];
      return { chunks: { ...others, [event.partition]: { attempt: event.attempt, next: event.seq + 1, records } } };
    }),
    keepDataset: assign({ dataset: ({ event }) => (event.type === 'JOB_FINISHED' ? event.dataset : undefined) }),
  },
  guards: {
    lastChunk: ({ context, event }) =>
      event.type === 'RESULT_CHUNK' &&
      event.last &&
      event.partition < context.partitions &&
      !context.reported.includes(event.partition) &&
      inSequence(context, event),
    wasCancelled: ({ event }) => event.type === 'JOB_FAILED' && event.cancelled,
  },
}).createMachine({
  id: 'sparkJob',
  context: ({ input }) => ({ ...input, chunks: {}, reported: [], outOfSequence: 0 }),
  on: {
    RESULT_CHUNK: [
      {
        guard: 'lastChunk',
        actions: [
          {
            type: 'reportResult',
            params: ({ context, event }) => ({
              partition: event.partition,
              attempt: event.attempt,
              records: [...(context.chunks[event.partition]?.records ?? []), ...event.records],
            }),
          },
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
