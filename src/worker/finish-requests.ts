import type { HttpServer } from '../transport/http.js';
import type { InFlight } from '../transport/in-flight.js';
import type { ServedEndpoints } from './endpoints.js';

/**
 * Stops taking requests on both transports at once and lets the running ones finish, for at most
 * `timeoutMs` in all; what is still running then is logged and left behind, so one stuck handler
 * cannot keep the partition's result from the driver.
 */
export async function finishRequests(
  endpoints: { served?: ServedEndpoints; inFlight: InFlight },
  http: HttpServer | undefined,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const natsDone = async (): Promise<string[]> => {
    // Delivers what the subscriptions already hold, then closes them; async handlers run on.
    await endpoints.served?.stop();
    return endpoints.inFlight.settled(Math.max(0, deadline - Date.now()));
  };
  const [, natsLeft] = await Promise.all([http?.close(timeoutMs), natsDone()]);
  const left = [...natsLeft, ...(http?.inFlight?.() ?? [])];
  if (left.length > 0) log(`draining: still running after ${timeoutMs} ms (drainTimeoutMs), going on without them: ${left.join(', ')}`);
}
