import { Agent, request } from 'node:http';

/** A keep-alive HTTP GET client for latency samples (one connection, one request at a time). */
export class KeepAliveClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** GETs `path` and resolves with the body; rejects on a non-2xx status or after `timeoutMs`. */
  get(path: string, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({ host: this.host, port: this.port, path, agent: this.agent, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve(body) : reject(new Error(`GET ${path}: ${res.statusCode} ${body}`))));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
