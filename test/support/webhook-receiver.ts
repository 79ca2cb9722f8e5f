/**
 * A webhook receiver for tests: a real HTTP server that verifies every delivery with the
 * `standardwebhooks` library, as a customer's receiver would, and records what arrived.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedDelivery {
  path: string;
  id: string;
  /** The verified payload, or undefined when verification failed. */
  payload?: { type: string; timestamp: string; data: Record<string, unknown> };
  error?: string;
  /** The status the receiver answered (none while hanging). */
  answered?: number;
}

export type ReceiverBehaviour = 'ok' | 'fail' | 'hang';

export interface WebhookReceiver {
  url(path: string): string;
  /** The secret deliveries to `path` must be signed with. */
  secret(path: string, secret: string): void;
  behaviour: ReceiverBehaviour;
  /** Paths answered otherwise than `behaviour` (by prefix). */
  behaviourOf: Map<string, ReceiverBehaviour>;
  received: ReceivedDelivery[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const secrets = new Map<string, string>();
  const hanging: ServerResponse[] = [];
  const receiver: WebhookReceiver = {
    url: () => '',
    secret: (path, s) => void secrets.set(path, s),
    behaviour: 'ok',
    behaviourOf: new Map(),
    received: [],
    close: async () => undefined,
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      const entry: ReceivedDelivery = { path, id: String(req.headers['webhook-id'] ?? '') };
      try {
        entry.payload = new Webhook(secrets.get(path) ?? 'whsec_bm90LXNldA==').verify(body, req.headers as Record<string, string>) as ReceivedDelivery['payload'];
      } catch (e) {
        entry.error = (e as Error).message;
      }
      receiver.received.push(entry);
      const behaviour = [...receiver.behaviourOf].find(([prefix]) => path.startsWith(prefix))?.[1] ?? receiver.behaviour;
      if (behaviour === 'hang') return void hanging.push(res);
      res.statusCode = entry.error ? 400 : behaviour === 'ok' ? 204 : 503;
      entry.answered = res.statusCode;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  receiver.url = (path) => `http://127.0.0.1:${port}${path}`;
  receiver.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return receiver;
}
