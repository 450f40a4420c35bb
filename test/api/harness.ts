// Test harness for the server: a real server on loopback port 0 with a temporary data directory, and
// a real `ws` client that buffers what the server sends so a test can wait for a given answer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadServerConfig, type ServerConfigInput } from '../../server/config/server-config.ts';
import { createCompute } from '../../server/api/compute-local.ts';
import { startLoupeServer, type LoupeServer } from '../../server/api/server.ts';
import { parseServerMessage, type ServerMessage } from '../../server/contracts/protocol.ts';

interface TestContextLike {
  after(fn: () => Promise<void> | void): void;
}

export function tempDir(t: TestContextLike, prefix = 'loupe-api-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export async function startTestServer(t: TestContextLike, input: ServerConfigInput = {}): Promise<LoupeServer> {
  const dataDir = input.dataDir ?? tempDir(t);
  const config = loadServerConfig({ host: '127.0.0.1', port: 0, ...input, dataDir });
  const server = await startLoupeServer(config, createCompute({ device: 'cpu', dataDir }));
  t.after(() => server.close());
  return server;
}

/** Safety net only (a hung server must not hang CI); no test asserts on time. */
const WAIT_LIMIT_MS = 60_000;

export class TestClient {
  readonly ws: WebSocket;
  readonly received: ServerMessage[] = [];
  readonly invalid: string[] = [];
  #waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #n = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const r = parseServerMessage(data.toString());
      if (!r.ok) {
        this.invalid.push(`${r.error.code}: ${r.error.message}`);
        return;
      }
      const m = r.message;
      const i = this.#waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(m);
      else this.received.push(m);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(baseUrl: string, options: { hello?: boolean; token?: string } = {}): Promise<TestClient> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`);
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new TestClient(ws);
    if (options.hello !== false) {
      const rid = c.send({ type: 'hello', protocol: 1, client: { name: 'test', version: '0' }, ...(options.token ? { token: options.token } : {}) });
      await c.next((m) => m.type === 'welcome' && m.requestId === rid);
    }
    return c;
  }

  nextId(): string {
    return `t-${++this.#n}`;
  }

  /** Sends a message object (a requestId is added when missing) or raw text; returns the requestId. */
  send(msg: Record<string, unknown> | string): string {
    if (typeof msg === 'string') {
      this.ws.send(msg);
      return '';
    }
    const requestId = typeof msg.requestId === 'string' ? msg.requestId : this.nextId();
    this.ws.send(JSON.stringify({ ...msg, requestId }));
    return requestId;
  }

  next(pred: (m: ServerMessage) => boolean): Promise<ServerMessage> {
    const i = this.received.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${WAIT_LIMIT_MS} ms; got ${JSON.stringify(this.received).slice(0, 500)}`)), WAIT_LIMIT_MS);
      timer.unref();
      this.#waiters.push({ pred, resolve: (m) => {
        clearTimeout(timer);
        resolve(m);
      } });
    });
  }

  /** The final answer to a request: anything with its requestId except progress frames. */
  reply(requestId: string): Promise<ServerMessage> {
    return this.next((m) => m.requestId === requestId && m.type !== 'predict.progress' && m.type !== 'train.progress' && !(m.type === 'job.status' && (m.state === 'running' || m.kind === 'predict.slide')));
  }

  close(): void {
    this.ws.close();
  }
}
