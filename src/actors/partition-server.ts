import { assign, fromPromise, setup } from 'xstate';
import { SparkPartitionServerError } from '../errors.js';
import { toFailureReport, type FailureReport, type PartitionState, type WireError } from '../protocol/types.js';

/**
 * The partition server actor: the lifecycle of one partition's server process.
 *
 * `initializing` (load the partition's rows, bind the server, register with the supervisor) →
 * `registered` (open the endpoints) → `serving` → `draining` (stop taking requests, build the
 * result) → `finished`; any error goes to `failed`. A shutdown that arrives before `serving` is
 * remembered and honoured as soon as serving is reached, so no request to stop is lost.
 *
 * The definition is pure: every effect is an actor or action supplied with `machine.provide()`.
 */

/** Input of the partition server actor. */
export interface PartitionServerInput {
  /** Index of the partition this server serves, from 0. */
  partition: number;
  /** Attempt number of this worker process (0 first, higher on each retry of the partition). */
  attempt: number;
}

/** Where the partition's server is bound. */
export interface Binding {
  /** Host the server is bound to (the worker's host when it has no HTTP server). */
  host: string;
  /** Port of the HTTP server, or `null` when the partition serves over NATS only. */
  port: number | null;
}

/** Context of the partition server actor. */
export interface PartitionServerContext extends PartitionServerInput {
  /** Where the server is bound; absent until `listen` resolved. */
  binding?: Binding;
  /** A shutdown arrived (or registration said the cluster is stopping) before serving: drain as soon as serving is reached. */
  shutdownRequested: boolean;
  /** Why the actor failed: a failed effect's error (with its stack, and whether a retry can fix it) or a `FAIL` event's; set only in `failed`. */
  error?: FailureReport;
}

/** Events the partition server actor accepts. */
export type PartitionServerEvent =
  | {
      /** The driver broadcast a shutdown: drain once serving. */
      type: 'SHUTDOWN';
    }
  | {
      /** Fail now, e.g. the NATS connection closed or the driver's heartbeat stopped. */
      type: 'FAIL';
      /** The reason, kept in the context's `error`. */
      error: WireError;
    };

function notProvided(name: string): () => Promise<never> {
  return () => Promise.reject(new SparkPartitionServerError('SPS_NOT_PROVIDED', `partition server effect "${name}" was not provided`));
}

const failed = { target: '#partitionServer.failed', actions: 'recordError' } as const;

/** The partition server state machine; provide its effects before starting it. */
export const partitionServerMachine = setup({
  types: {
    input: {} as PartitionServerInput,
    context: {} as PartitionServerContext,
    events: {} as PartitionServerEvent,
  },
  actors: {
    /** Runs the user's `initPartition` over the partition's rows. */
    initPartition: fromPromise<void, PartitionServerInput>(notProvided('initPartition')),
    /** Binds the partition's server (HTTP or none) and reports where. */
    listen: fromPromise<Binding, PartitionServerInput>(notProvided('listen')),
    /** Registers with the supervisor; resolves `{ shutdown: true }` if the cluster is already stopping. */
    register: fromPromise<{ shutdown: boolean }, PartitionServerInput & Binding>(notProvided('register')),
    /** Starts answering endpoint requests. */
    openEndpoints: fromPromise<void, PartitionServerInput>(notProvided('openEndpoints')),
    /** Stops taking requests, builds and hands over the result. */
    drain: fromPromise<void, PartitionServerInput>(notProvided('drain')),
  },
  actions: {
    /** Tells the supervisor (and anyone watching) which state was entered. */
    reportState: (_, _params: { state: PartitionState }) => {},
    /** Keeps the error of a failed effect or a FAIL event for the `failed` report. */
    recordError: assign({
      error: ({ event }) => {
        const e = event as PartitionServerEvent | { type: string; error: unknown };
        return e.type === 'FAIL' ? (e as { error: WireError }).error : toFailureReport((e as { error: unknown }).error, 'SPS_PARTITION_ERROR');
      },
    }),
    rememberShutdown: assign({ shutdownRequested: true }),
  },
  guards: {
    shutdownRequested: ({ context }) => context.shutdownRequested,
  },
}).createMachine({
  id: 'partitionServer',
  context: ({ input }) => ({ partition: input.partition, attempt: input.attempt, shutdownRequested: false }),
  initial: 'initializing',
  states: {
    initializing: {
      entry: { type: 'reportState', params: { state: 'initializing' } },
      on: { SHUTDOWN: { actions: 'rememberShutdown' }, FAIL: failed },
      initial: 'loading',
      states: {
        loading: {
          invoke: {
            src: 'initPartition',
            input: ({ context }) => ({ partition: context.partition, attempt: context.attempt }),
            onDone: 'listening',
            onError: failed,
          },
        },
        listening: {
          invoke: {
            src: 'listen',
            input: ({ context }) => ({ partition: context.partition, attempt: context.attempt }),
            onDone: { target: 'registering', actions: assign({ binding: ({ event }) => event.output }) },
            onError: failed,
          },
        },
        registering: {
          invoke: {
            src: 'register',
            input: ({ context }) => ({ partition: context.partition, attempt: context.attempt, ...context.binding! }),
            onDone: {
              target: '#partitionServer.registered',
              actions: assign({ shutdownRequested: ({ context, event }) => context.shutdownRequested || event.output.shutdown }),
            },
            onError: failed,
          },
        },
      },
    },
    registered: {
      entry: { type: 'reportState', params: { state: 'registered' } },
      on: { SHUTDOWN: { actions: 'rememberShutdown' }, FAIL: failed },
      invoke: {
        src: 'openEndpoints',
        input: ({ context }) => ({ partition: context.partition, attempt: context.attempt }),
        onDone: 'serving',
        onError: failed,
      },
    },
    serving: {
      entry: { type: 'reportState', params: { state: 'serving' } },
      always: { guard: 'shutdownRequested', target: 'draining' },
      on: { SHUTDOWN: 'draining', FAIL: failed },
    },
    draining: {
      entry: { type: 'reportState', params: { state: 'draining' } },
      on: { FAIL: failed },
      invoke: {
        src: 'drain',
        input: ({ context }) => ({ partition: context.partition, attempt: context.attempt }),
        onDone: 'finished',
        onError: failed,
      },
    },
    finished: {
      type: 'final',
      entry: { type: 'reportState', params: { state: 'finished' } },
    },
    failed: {
      type: 'final',
      entry: { type: 'reportState', params: { state: 'failed' } },
    },
  },
});
