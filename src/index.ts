/**
 * spark-partition-server: launch servers on the partitions of a dataset, supervise them as actors
 * over NATS, query partition data directly, and collect what they return.
 * @packageDocumentation
 */
// What a partition server module needs: also the `spark-partition-server/server` entry.
export * from './server.js';
export { Cluster } from './driver/cluster.js';
export type { ClusterStats, HostAddress, RejoinOptions, RequestAllOptions } from './driver/cluster.js';
export type { ClusterEvents, ClusterState, MemberEvent, ProgressEvent, SparkEvent, StateEvent } from './driver/cluster-events.js';
export type { Dashboard, DashboardOptions } from './driver/dashboard/dashboard-server.js';
export type { DashboardSnapshot, PartitionView, RequestView, RestartView, TimelineEntry, RunInfo } from './driver/dashboard/run-monitor.js';
export type { Inspector, RemoteSnapshot } from './driver/inspection.js';
export type { ClusterOptions, NatsAccountOption, NatsAuthOption, ResolvedOptions, ServerRef } from './driver/options.js';
export type { BusAccess, BusAuth, BusTls } from './security/bus-access.js';
export type { EmbeddedSource, RangeSource } from './driver/launch/data-source.js';
export type { FileSource } from './driver/launch/file-source.js';
export type { CredentialsFile } from './driver/credentials-file.js';
export type { Launcher, LaunchPlan, LaunchEvents, BusNetwork, Isolation } from './driver/launch/launcher.js';
export type { WorkerProgram } from './driver/launch/worker-command.js';
export type { CompiledProgram } from './driver/launch/compile-server.js';
export { SparkApplication } from './spark/spark-app.js';
export type { SparkApplicationOptions, SparkApplicationInfo, SparkApplicationStatus } from './spark/spark-app.js';
export { SparkLauncher } from './spark/spark-launcher.js';
export { KeyError, partitionOfKey } from './protocol/key-partition.js';
export type { PartitionKey } from './protocol/key-partition.js';
export type { PartitionBy } from './driver/launch/key-placement.js';
export type { Update, UpdatesStatus } from './worker/updates-consumer.js';
export type { PublishAck, PublishOptions } from './worker/events-publisher.js';
export type { DeadLetter } from './driver/updates-stream.js';
export { ResultDataset } from './spark/result-dataset.js';
export type { SaveOptions } from './spark/result-dataset.js';
export type { SparkSource, ReaderOptions } from './spark/spark-source.js';
export { microServices } from './transport/services.js';
export { subjectsFor } from './protocol/subjects.js';
export type { Subjects } from './protocol/subjects.js';
export { PROTOCOL_VERSION } from './protocol/codec.js';
export { PARTITION_STATES } from './protocol/types.js';
export type { PartitionState, Registration, WireError } from './protocol/types.js';
export { partitionServerMachine } from './actors/partition-server.js';
export type { Binding, PartitionServerContext, PartitionServerEvent, PartitionServerInput } from './actors/partition-server.js';
export { supervisorMachine } from './actors/supervisor.js';
export type { SupervisorContext, SupervisorEvent, SupervisorFailure, SupervisorInput } from './actors/supervisor.js';
export {
  InvalidOptionError,
  DependencyMissingError,
  StartTimeoutError,
  StopTimeoutError,
  PartitionFailedError,
  ClusterStateError,
  ComponentLostError,
  MalformedMessageError,
  ServerModuleError,
  SparkError,
  SparkSlotsError,
  WorkerError,
  ERROR_CODES,
} from './errors.js';
export type { ErrorCode } from './errors.js';
