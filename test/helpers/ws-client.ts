import WebSocket from 'ws';

/** An open WebSocket client: `next()` resolves with the next message (text as a string), `closed` with the close code. */
export interface WsClient {
  ws: WebSocket;
  next(): Promise<string | Buffer>;
  closed: Promise<number>;
}

/** Opens a WebSocket, resolving once open; rejects with `refused with <status>` when the upgrade is answered otherwise. */
export function openWs(url: string, options: WebSocket.ClientOptions = {}): Promise<WsClient> {
  const ws = new WebSocket(url, options);
  const received: (string | Buffer)[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    received.push(isBinary ? data : data.toString('utf8'));
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const next = async (): Promise<string | Buffer> => {
    while (received.length === 0) await new Promise<void>((r) => waiters.push(r));
    return received.shift()!;
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, next, closed }));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`refused with ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}
