// WebSocket `/ws`, protocol v1 (contracts/protocol.ts, docs/protocol.md). One Session per connection:
// every frame is size-checked and parsed at the edge, then dispatched by `type` in one exhaustive
// switch. A bad frame (malformed JSON, unknown type, wrong fields, oversize, a request before hello)
// gets an `error` frame with an E_… code and the connection stays usable; only a wrong protocol
// version, a wrong token, or a frame beyond the hard size limit (ws closes with 1009) ends it.
// Requests run concurrently, bounded per connection; closing the socket cancels its requests.
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { AppError, toAppError } from '../contracts/errors.ts';
import {
  CloseCodes,
  PROTOCOL_VERSION,
  parseClientMessage,
  type ClientMessage,
  type ClientMessageOf,
  type ServerMessage,
  type WireFeatureCollection,
} from '../contracts/protocol.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import type { Services } from './services.ts';

/** Progress frames are dropped (results never) while this much is still unsent to a slow client. */
const SLOW_CLIENT_BYTES = 4 * 2 ** 20;
/** How long the binary frame announced by an inline predict.region may take to arrive. */
const INLINE_FRAME_TIMEOUT_MS = 30_000;
/** A connection that has not said hello by then is closed (idle pre-auth sockets hold resources). */
export const HELLO_TIMEOUT_MS = 30_000;

export function tokenMatches(expected: string | null, given: string | undefined): boolean {
  if (expected === null) return true;
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function toBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

interface AwaitingImage {
  message: ClientMessageOf<'predict.region'>;
  byteLength: number;
  timer: NodeJS.Timeout;
  /** Already refused (too large): the frame is read and dropped without a second error. */
  swallow: boolean;
}

class Session {
  readonly id = randomUUID();
  readonly #ws: WebSocket;
  readonly #services: Services;
  #hello = false;
  readonly #pending = new Map<string, AbortController>();
  #awaiting: AwaitingImage | null = null;
  #closed = false;

  constructor(ws: WebSocket, services: Services) {
    this.#ws = ws;
    this.#services = services;
  }

  get ready(): boolean {
    return this.#hello && !this.#closed;
  }

  send(message: ServerMessage, options: { droppable?: boolean } = {}): void {
    if (this.#closed || this.#ws.readyState !== WebSocket.OPEN) return;
    if (options.droppable && this.#ws.bufferedAmount > SLOW_CLIENT_BYTES) return;
    this.#ws.send(JSON.stringify(message));
  }

  #error(requestId: string | null, err: unknown): void {
    const e = toAppError(err);
    if (e.code === 'E_INTERNAL') process.stderr.write(`loupe: ws ${e.code}: ${e.stack ?? e.message}\n`);
    this.send({ type: 'error', requestId, code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) });
  }

  onClose(): void {
    this.#closed = true;
    if (this.#awaiting) clearTimeout(this.#awaiting.timer);
    this.#awaiting = null;
    for (const c of this.#pending.values()) c.abort(new AppError('E_CANCELLED', 'the client disconnected'));
    this.#pending.clear();
  }

  onFrame(data: RawData, isBinary: boolean): void {
    const bytes = toBytes(data);
    const limits = this.#services.limits;
    if (isBinary) {
      const waiting = this.#awaiting;
      if (!waiting) return this.#error(null, new AppError('E_PROTOCOL_UNEXPECTED_BINARY', 'a binary frame must follow a predict.region with slide "inline" and image.byteLength'));
      this.#awaiting = null;
      clearTimeout(waiting.timer);
      if (waiting.swallow) return this.#release(waiting.message.requestId);
      if (bytes.length > limits.maxInlineImageBytes || bytes.length > limits.maxFrameBytes) {
        this.#release(waiting.message.requestId);
        return this.#error(waiting.message.requestId, new AppError('E_LIMIT_INLINE_IMAGE', `inline image of ${bytes.length} bytes exceeds the limit of ${Math.min(limits.maxInlineImageBytes, limits.maxFrameBytes)} bytes`));
      }
      if (bytes.length !== waiting.byteLength) {
        this.#release(waiting.message.requestId);
        return this.#error(waiting.message.requestId, new AppError('E_PROTOCOL_BAD_IMAGE', `binary frame has ${bytes.length} bytes, image.byteLength announced ${waiting.byteLength}`));
      }
      return void this.#runPredict(waiting.message, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
    if (bytes.length > limits.maxFrameBytes) {
      return this.#error(null, new AppError('E_LIMIT_FRAME_TOO_LARGE', `frame of ${bytes.length} bytes exceeds the limit of ${limits.maxFrameBytes} bytes (welcome.limits.maxFrameBytes)`, { details: { limit: limits.maxFrameBytes } }));
    }
    if (this.#awaiting) {
      const w = this.#awaiting;
      this.#awaiting = null;
      clearTimeout(w.timer);
      this.#release(w.message.requestId);
      this.#error(w.message.requestId, new AppError('E_PROTOCOL_IMAGE_MISSING', 'expected the binary PNG frame announced by predict.region, got a text frame'));
    }
    const parsed = parseClientMessage(bytes.toString('utf8'));
    if (!parsed.ok) return this.#error(parsed.requestId, parsed.error);
    const msg = parsed.message;
    if (!this.#hello && msg.type !== 'hello') {
      return this.#error(msg.requestId, new AppError('E_PROTOCOL_HELLO_REQUIRED', `send hello {protocol: ${PROTOCOL_VERSION}, token, client} before "${msg.type}"`));
    }
    void this.#dispatch(msg);
  }

  /** Reserves a pending slot for a request, or answers E_LIMIT_PENDING / a duplicate id error. */
  #reserve(requestId: string): AbortController | null {
    const limits = this.#services.limits;
    if (this.#pending.has(requestId)) {
      this.#error(requestId, new AppError('E_PROTOCOL_DUPLICATE_REQUEST', `requestId "${requestId}" is already in flight on this connection; use a fresh id per request`));
      return null;
    }
    if (this.#pending.size >= limits.maxPendingPerConnection) {
      this.#error(requestId, new AppError('E_LIMIT_PENDING', `this connection already has ${this.#pending.size} requests in flight (limit ${limits.maxPendingPerConnection}); wait for answers`, { details: { limit: limits.maxPendingPerConnection } }));
      return null;
    }
    const c = new AbortController();
    this.#pending.set(requestId, c);
    return c;
  }

  #release(requestId: string): void {
    this.#pending.delete(requestId);
  }

  async #dispatch(msg: ClientMessage): Promise<void> {
    switch (msg.type) {
      case 'hello':
        return this.#onHello(msg);
      case 'predict.region':
        return this.#onPredict(msg);
      case 'candidates.next':
        return this.#guarded(msg.requestId, async (signal) => {
          const r = await this.#services.nextCandidates(msg.slide, msg.limit, { signal, origin: { sessionId: this.id, requestId: msg.requestId } });
          const objects: WireFeatureCollection = { type: 'FeatureCollection', features: r.objects.map((o) => o.feature) };
          this.send({ type: 'candidates', requestId: msg.requestId, slide: msg.slide, objects, remaining: r.remaining, modelVersion: r.modelVersion });
        });
      case 'corrections.submit':
        return this.#guarded(msg.requestId, async () => {
          if (msg.items.length > this.#services.limits.maxCorrectionItems) {
            throw new AppError('E_LIMIT_CORRECTIONS', `${msg.items.length} items exceed the limit of ${this.#services.limits.maxCorrectionItems} per submission; submit in parts`);
          }
          // Synchronous commit (synchronous = FULL) before the ack is sent. A retry of a stored
          // submission (same submissionId) gets the first ack again: the client can stop retrying.
          const r = this.#services.store.submitCorrections(msg.slide, msg.requestId, msg.reviewedRegions, msg.items, { submissionId: msg.submissionId });
          this.send({ type: 'corrections.ack', requestId: msg.requestId, slide: msg.slide, accepted: r.accepted, submissionId: r.submissionId, stale: r.stale });
        });
      case 'train.start':
        return this.#guarded(msg.requestId, async () => {
          const job = this.#services.startTraining(msg.mode, msg.slides, { sessionId: this.id, requestId: msg.requestId });
          this.send({ type: 'job.status', requestId: msg.requestId, jobId: job.id, kind: job.kind, state: job.state });
        });
      case 'job.cancel':
        // Control messages are never refused for being over the pending limit: a saturated client
        // must still be able to cancel.
        return this.#control(msg.requestId, async () => {
          // A request of this connection (e.g. a region the user panned away from) or a job.
          const own = this.#pending.get(msg.jobId);
          if (own) {
            own.abort(new AppError('E_CANCELLED', `request ${msg.jobId} was cancelled by the client`));
            this.send({ type: 'job.status', requestId: msg.requestId, jobId: msg.jobId, kind: 'request', state: 'cancelled' });
            return;
          }
          const job = await this.#services.jobs.cancel(msg.jobId);
          this.send({ type: 'job.status', requestId: msg.requestId, jobId: job.id, kind: job.kind, state: job.state });
        });
      case 'model.activate':
        return this.#control(msg.requestId, async () => {
          const r = await this.#services.activateModel(msg.version, { sessionId: this.id, requestId: msg.requestId });
          this.#ackModel(msg.requestId, r);
        });
      case 'model.rollback':
        return this.#control(msg.requestId, async () => {
          const r = await this.#services.rollbackModel({ sessionId: this.id, requestId: msg.requestId });
          this.#ackModel(msg.requestId, r);
        });
      default: {
        const never: never = msg;
        return never;
      }
    }
  }

  #ackModel(requestId: string, r: { active: string; previous: string | null }): void {
    // The broadcast (services event) already told this session when it caused the change; an
    // activation that changed nothing still deserves an answer.
    if (r.previous === r.active) this.send({ type: 'model.active', requestId, active: r.active, previous: r.previous });
  }

  async #control(requestId: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#error(requestId, err);
    }
  }

  async #guarded(requestId: string, fn: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const c = this.#reserve(requestId);
    if (!c) return;
    try {
      await fn(c.signal);
    } catch (err) {
      this.#error(requestId, err);
    } finally {
      this.#release(requestId);
    }
  }

  #onHello(msg: ClientMessageOf<'hello'>): void {
    const s = this.#services;
    if (msg.protocol !== PROTOCOL_VERSION) {
      this.#error(msg.requestId, new AppError('E_PROTOCOL_VERSION', `this server speaks protocol ${PROTOCOL_VERSION}, the client ${msg.protocol}; update the client or the server`));
      this.#ws.close(CloseCodes.ProtocolVersion.code, `protocol ${msg.protocol} not supported; server speaks ${PROTOCOL_VERSION}`);
      return;
    }
    if (!tokenMatches(s.config.token, msg.token)) {
      this.#error(msg.requestId, new AppError('E_AUTH_TOKEN', 'missing or wrong token: set the token the server was started with (--token)'));
      this.#ws.close(CloseCodes.Unauthorized.code, CloseCodes.Unauthorized.reason);
      return;
    }
    this.#hello = true;
    this.send({
      type: 'welcome',
      requestId: msg.requestId,
      server: { name: 'loupe', version: LOUPE_VERSION },
      protocol: PROTOCOL_VERSION,
      models: s.modelList(),
      limits: { ...s.limits },
      notices: s.notices(),
    });
  }

  #onPredict(msg: ClientMessageOf<'predict.region'>): void {
    const limits = this.#services.limits;
    const inline = msg.slide === 'inline';
    if (inline !== (msg.image !== undefined)) {
      return this.#error(msg.requestId, new AppError('E_PROTOCOL_BAD_MESSAGE', 'image: {format: "png", byteLength} is required with slide "inline" and only then'));
    }
    if (!inline) return void this.#runPredict(msg, null);
    const byteLength = msg.image?.byteLength ?? 0;
    if (!this.#reserve(msg.requestId)) return;
    const swallow = byteLength > limits.maxInlineImageBytes;
    if (swallow) {
      // The client will still send the frame: read and drop it so it does not count as a stray frame.
      this.#error(msg.requestId, new AppError('E_LIMIT_INLINE_IMAGE', `inline image of ${byteLength} bytes exceeds the limit of ${limits.maxInlineImageBytes} bytes`));
    }
    const timer = setTimeout(() => {
      if (this.#awaiting?.message.requestId !== msg.requestId) return;
      this.#awaiting = null;
      this.#release(msg.requestId);
      this.#error(msg.requestId, new AppError('E_PROTOCOL_IMAGE_MISSING', `the binary PNG frame did not arrive within ${INLINE_FRAME_TIMEOUT_MS / 1000} s`));
    }, INLINE_FRAME_TIMEOUT_MS);
    timer.unref();
    this.#awaiting = { message: msg, byteLength, timer, swallow };
  }

  async #runPredict(msg: ClientMessageOf<'predict.region'>, png: Uint8Array | null): Promise<void> {
    // Inline requests reserved their slot when announced; slide requests reserve it now.
    const c = png ? this.#pending.get(msg.requestId) : this.#reserve(msg.requestId);
    if (!c) return;
    try {
      const r = await this.#services.predictRegion(
        { slide: msg.slide, region: msg.region, downsample: msg.downsample, model: msg.model, options: msg.options },
        png,
        {
          signal: c.signal,
          onProgress: (p) => this.send({ type: 'predict.progress', requestId: msg.requestId, done: p.done, total: p.total, ...(p.message ? { message: p.message } : {}) }, { droppable: true }),
        },
      );
      this.send({
        type: 'predict.result',
        requestId: msg.requestId,
        slide: msg.slide,
        region: msg.region,
        downsample: msg.downsample,
        objects: { type: 'FeatureCollection', features: r.objects.map((o) => o.feature) },
        stats: r.stats,
        modelVersion: r.modelVersion,
      });
    } catch (err) {
      this.#error(msg.requestId, err);
    } finally {
      this.#release(msg.requestId);
    }
  }
}

export interface WsHandle {
  wss: WebSocketServer;
  sessionCount(): number;
  close(): Promise<void>;
}

/** Serves protocol v1 at /ws on the given HTTP server. */
export function attachWebSocket(server: HttpServer, services: Services): WsHandle {
  const wss = new WebSocketServer({ server, path: '/ws', maxPayload: services.limits.hardFrameBytes, perMessageDeflate: false });
  const sessions = new Map<string, Session>();
  const unsubscribe = services.onEvent(({ message, origin }) => {
    for (const s of sessions.values()) {
      if (!s.ready) continue;
      const mine = origin !== undefined && origin.sessionId === s.id;
      if (message.type === 'error' && !mine) continue;
      const requestId = mine ? origin.requestId : null;
      s.send({ ...message, requestId }, { droppable: message.type === 'train.progress' });
    }
  });
  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    if (sessions.size >= services.config.maxConnections) {
      ws.close(CloseCodes.TooManyConnections.code, CloseCodes.TooManyConnections.reason);
      return;
    }
    const session = new Session(ws, services);
    sessions.set(session.id, session);
    const helloTimer = setTimeout(() => {
      if (!session.ready) ws.close(CloseCodes.HelloTimeout.code, CloseCodes.HelloTimeout.reason);
    }, HELLO_TIMEOUT_MS);
    helloTimer.unref();
    ws.on('message', (data, isBinary) => {
      try {
        session.onFrame(data, isBinary);
      } catch (err) {
        // Never let one frame take the process down.
        process.stderr.write(`loupe: ws frame handling failed: ${(err as Error).stack ?? String(err)}\n`);
      }
    });
    ws.on('error', () => undefined); // e.g. 1009 on an oversize frame: ws closes the socket itself.
    ws.on('close', () => {
      clearTimeout(helloTimer);
      session.onClose();
      sessions.delete(session.id);
    });
  });
  return {
    wss,
    sessionCount: () => sessions.size,
    close: () =>
      new Promise<void>((resolve) => {
        unsubscribe();
        for (const c of wss.clients) c.close(CloseCodes.GoingAway.code, CloseCodes.GoingAway.reason);
        wss.close(() => resolve());
        setTimeout(() => {
          for (const c of wss.clients) c.terminate();
        }, 1000).unref();
      }),
  };
}
