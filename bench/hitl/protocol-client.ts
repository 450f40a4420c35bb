// The simulated pathologist's connection to `loupe serve`: a real `ws` client speaking protocol v1
// (docs/protocol.md) exactly as the QuPath extension does — hello, predict.region, candidates.next,
// corrections.submit, train.start (waiting for model.updated), model.activate. Every frame the server
// sends is parsed with the protocol's own schemas; an error frame becomes a thrown AppError.
import WebSocket from 'ws';
import { AppError } from '../../server/contracts/errors.ts';
import { parseServerMessage, type ServerMessage, type WireFeatureCollection } from '../../server/contracts/protocol.ts';
import type { OracleItem } from '../../server/evaluation/oracle.ts';
import type { PolygonGeometry } from '../../server/contracts/geojson.ts';

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/** Long jobs (a full retrain on 2 shared cores) may take many minutes; this only catches a hung server. */
const WAIT_LIMIT_MS = 30 * 60_000;

export class ReviewClient {
  readonly #ws: WebSocket;
  readonly #buffer: ServerMessage[] = [];
  #waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void; reject: (e: Error) => void }[] = [];
  #n = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const r = parseServerMessage(data.toString());
      if (!r.ok) return;
      const m = r.message;
      const i = this.#waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.#waiters.splice(i, 1)[0]?.resolve(m);
      else if (m.type !== 'predict.progress' && m.type !== 'train.progress') this.#buffer.push(m);
    });
    ws.on('close', () => {
      for (const w of this.#waiters.splice(0)) w.reject(new AppError('E_CONNECTION_CLOSED', 'the server closed the connection'));
    });
  }

  static async connect(baseUrl: string): Promise<ReviewClient> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`, { maxPayload: 64 * 2 ** 20 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new ReviewClient(ws);
    const rid = c.#send({ type: 'hello', protocol: 1, client: { name: 'loupe-hitl-bench', version: '1' } });
    await c.#reply(rid, 'welcome');
    return c;
  }

  #send(msg: Record<string, unknown>): string {
    const requestId = `hitl-${++this.#n}`;
    this.#ws.send(JSON.stringify({ ...msg, requestId }));
    return requestId;
  }

  #next(pred: (m: ServerMessage) => boolean): Promise<ServerMessage> {
    const i = this.#buffer.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#buffer.splice(i, 1)[0] as ServerMessage);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new AppError('E_TIMEOUT', `no answer within ${WAIT_LIMIT_MS / 1000} s`)), WAIT_LIMIT_MS);
      timer.unref();
      this.#waiters.push({ pred, reject, resolve: (m) => {
        clearTimeout(timer);
        resolve(m);
      } });
    });
  }

  /** The answer of type `type` to a request, or its error frame (thrown). */
  async #reply<T extends ServerMessage['type']>(requestId: string, type: T): Promise<Of<T>> {
    const m = await this.#next((x) => x.requestId === requestId && (x.type === type || x.type === 'error'));
    if (m.type === 'error') throw new AppError(m.code.startsWith('E_') ? (m.code as `E_${string}`) : 'E_SERVER', `${type}: ${m.message}`);
    if (m.type !== type) throw new AppError('E_PROTOCOL', `expected ${type}, got ${m.type}`);
    return m as Of<T>;
  }

  /** Predicts with `model` (a version), default the active one. */
  async predictRegion(slide: string, region: { x: number; y: number; width: number; height: number }, downsample: number, model?: string): Promise<Of<'predict.result'>> {
    return this.#reply(this.#send({ type: 'predict.region', slide, region, downsample, ...(model === undefined ? {} : { model }) }), 'predict.result');
  }

  async candidates(slide: string, limit: number): Promise<Of<'candidates'>> {
    return this.#reply(this.#send({ type: 'candidates.next', slide, limit, order: 'energy' }), 'candidates');
  }

  async submit(slide: string, reviewedRegions: PolygonGeometry[], items: OracleItem[]): Promise<Of<'corrections.ack'>> {
    return this.#reply(this.#send({ type: 'corrections.submit', slide, reviewedRegions, items }), 'corrections.ack');
  }

  /** Starts a training job and waits for its model.updated (or throws the job's error). */
  async train(mode: 'quick' | 'full'): Promise<Of<'model.updated'>> {
    const rid = this.#send({ type: 'train.start', mode });
    const end = await this.#next((m) => m.requestId === rid && (m.type === 'model.updated' || m.type === 'error' || (m.type === 'job.status' && (m.state === 'failed' || m.state === 'cancelled'))));
    if (end.type === 'error') throw new AppError(end.code.startsWith('E_') ? (end.code as `E_${string}`) : 'E_SERVER', `train.start: ${end.message}`);
    if (end.type !== 'model.updated') throw new AppError('E_TRAIN_FAILED', `train.start ${mode}: job ${end.type === 'job.status' ? end.state : end.type}`);
    return end;
  }

  async activate(version: string): Promise<Of<'model.active'>> {
    return this.#reply(this.#send({ type: 'model.activate', version }), 'model.active');
  }

  close(): void {
    this.#ws.close();
  }
}

export type { WireFeatureCollection };
