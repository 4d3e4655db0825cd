import { timingSafeEqual } from 'node:crypto';
import { httpResponse, type HttpServer } from '../transport/http.js';

/** Checks a presented token against the cluster's in constant time. */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Mounts `/control/health` and `/control/shutdown` on a partition's HTTP server. Shutdown needs
 * the cluster's token, as `Authorization: Bearer <token>` or `x-sps-token`.
 */
export function mountControlRoutes(
  http: HttpServer,
  opts: { token: string; health: () => Record<string, unknown>; shutdown: () => void; refused: () => void },
): void {
  http.route('get', '/control/health', () => ({ ...opts.health(), http: http.implementation }));
  http.route('post', '/control/shutdown', (req) => {
    const bearer = req.headers.authorization?.replace(/^Bearer\s+/i, '');
    if (!tokenMatches(opts.token, req.headers['x-sps-token'] ?? bearer)) {
      opts.refused();
      return httpResponse(403, { error: { code: 'SPS_BAD_TOKEN', message: 'shutdown refused: missing or wrong cluster token' } });
    }
    // Answer first: draining closes this very server.
    setImmediate(opts.shutdown);
    return httpResponse(202, { ...opts.health(), state: 'draining' });
  });
}
