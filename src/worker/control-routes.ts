import { httpResponse, type HttpServer } from '../transport/http.js';
import { secretMatches } from '../security/attempt-secrets.js';

/**
 * Mounts `/control/health` and `/control/shutdown` on a partition's HTTP server. Shutdown needs
 * this attempt's own control token (see `attempt-secrets.ts`), as `Authorization: Bearer <token>`
 * or `x-sps-token`: no other partition's or attempt's token, nor the dashboard's, opens it.
 */
export function mountControlRoutes(
  http: HttpServer,
  opts: { token: string; health: () => Record<string, unknown>; shutdown: () => void; refused: () => void },
): void {
  http.route('get', '/control/health', () => ({ ...opts.health(), http: http.implementation }));
  http.route('post', '/control/shutdown', (req) => {
    const bearer = req.headers.authorization?.replace(/^Bearer\s+/i, '');
    if (!secretMatches(opts.token, req.headers['x-sps-token'] ?? bearer)) {
      opts.refused();
      return httpResponse(403, { error: { code: 'SPS_BAD_TOKEN', message: "shutdown refused: missing or wrong control token (this attempt's own)" } });
    }
    // Answer first: draining closes this very server.
    setImmediate(opts.shutdown);
    return httpResponse(202, { ...opts.health(), state: 'draining' });
  });
}
