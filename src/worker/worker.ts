/**
 * The worker entry: runs one partition. Launchers start it with the environment described in
 * `worker-env.ts`; it exits 0 when the partition finished and 1 when it failed. It logs JSON
 * records on stderr (see `logger.ts`), which its launcher forwards to the driver's logger.
 * With `SPS_PARTITION_HOST=1` it is a partition host process instead (option `isolation:
 * 'thread'`), which runs this same entry as one thread per partition attempt. Each role loads
 * only its own modules: the host none of a partition's.
 */
import { isMainThread } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { HOST_IDLE_ENV, HOST_LOG_ENV, HOST_SOCKET_ENV, PARTITION_HOST_ENV } from './host-messages.js';

if (!isMainThread) {
  const [{ runPartitionThread }, { workerLogger }] = await Promise.all([import('./partition-thread.js'), import('./run-worker.js')]);
  await runPartitionThread(workerLogger());
} else if (process.env[PARTITION_HOST_ENV] === '1') {
  // Its threads run the entry this process was started with (import.meta.url may name the source
  // of a compiled entry). Spark tasks reach it on a Unix socket, the embedded launcher over IPC.
  const entry = pathToFileURL(process.argv[1]!);
  const socket = process.env[HOST_SOCKET_ENV];
  if (socket) {
    const { runSocketHost } = await import('./socket-host.js');
    runSocketHost(entry, socket, Number(process.env[HOST_IDLE_ENV]) || 10_000, process.env[HOST_LOG_ENV]);
  } else {
    const { runPartitionHost } = await import('./thread-host.js');
    runPartitionHost(entry);
  }
} else {
  const { runProcessWorker } = await import('./process-worker.js');
  await runProcessWorker();
}
