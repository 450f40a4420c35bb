// Protocol v1: every WebSocket message between a client (the QuPath extension, scripts) and the
// server, as data. Each message is a small schema; its TypeScript type is inferred from that schema,
// so the type and the runtime check cannot drift. api/ parses every incoming frame with
// `parseClientMessage` at the socket edge and trusts the result inside; tests and clients check what
// the server sends with `parseServerMessage`. docs/protocol.md describes exactly this module and
// fixtures/protocol/*.json hold one example per message type (the QuPath extension's tests read them).
//
// Conventions: `type` is `noun.verb`; every message carries `requestId` (server pushes that answer no
// request carry `requestId: null`); coordinates are level-0 pixels and a downsample is a separate number.
import { AppError } from './errors.ts';
import type { AreaGeometry, MultiPolygonGeometry, PolygonGeometry, Position, Rgb } from './geojson.ts';

export type { AreaGeometry, MultiPolygonGeometry, PolygonGeometry, Position, Rgb };

export const PROTOCOL_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// A minimal schema kit (parse, don't validate). A schema's `parse` returns a fresh value holding only
// the declared keys, or throws E_PROTOCOL_BAD_MESSAGE naming the JSON path that is wrong.

export interface Schema<T> {
  readonly parse: (value: unknown, path: string) => T;
  /** Human-readable shape, used in error messages and docs. */
  readonly describe: string;
}
export interface OptionalSchema<T> extends Schema<T> {
  readonly optional: true;
}
export type Infer<S> = S extends Schema<infer T> ? T : never;

function bad(path: string, expected: string, value: unknown, code: `E_${string}` = 'E_PROTOCOL_BAD_MESSAGE'): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'string' ? `"${value.slice(0, 40)}"` : typeof value === 'object' ? 'an object' : String(value);
  throw new AppError(code, `${path || 'message'}: expected ${expected}, got ${got}`, { details: { path } });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(opts: { min?: number; max?: number; pattern?: RegExp } = {}): Schema<string> {
  const min = opts.min ?? 0;
  const max = opts.max ?? 10_000;
  const describe = `a string of ${min}–${max} characters${opts.pattern ? ` matching ${opts.pattern}` : ''}`;
  return {
    describe,
    parse: (v, path) => {
      if (typeof v !== 'string' || v.length < min || v.length > max || (opts.pattern && !opts.pattern.test(v))) bad(path, describe, v);
      return v;
    },
  };
}

export function num(opts: { min?: number; max?: number; int?: boolean; exclusiveMin?: number } = {}): Schema<number> {
  const parts = [opts.int ? 'an integer' : 'a finite number'];
  if (opts.min !== undefined) parts.push(`≥ ${opts.min}`);
  if (opts.exclusiveMin !== undefined) parts.push(`> ${opts.exclusiveMin}`);
  if (opts.max !== undefined) parts.push(`≤ ${opts.max}`);
  const describe = parts.join(' ');
  return {
    describe,
    parse: (v, path) => {
      if (
        typeof v !== 'number' ||
        !Number.isFinite(v) ||
        (opts.int && !Number.isInteger(v)) ||
        (opts.min !== undefined && v < opts.min) ||
        (opts.max !== undefined && v > opts.max) ||
        (opts.exclusiveMin !== undefined && v <= opts.exclusiveMin)
      ) {
        bad(path, describe, v);
      }
      return v;
    },
  };
}

export const bool: Schema<boolean> = {
  describe: 'true or false',
  parse: (v, path) => (typeof v === 'boolean' ? v : bad(path, 'true or false', v)),
};

export function lit<const L extends readonly (string | number)[]>(...values: L): Schema<L[number]> {
  const describe = values.map((x) => JSON.stringify(x)).join(' | ');
  return {
    describe,
    parse: (v, path) => {
      const hit = values.find((x) => x === v);
      if (hit === undefined) bad(path, describe, v);
      return hit;
    },
  };
}

export function nullable<T>(s: Schema<T>): Schema<T | null> {
  return { describe: `${s.describe} or null`, parse: (v, path) => (v === null ? null : s.parse(v, path)) };
}

export function opt<T>(s: Schema<T>): OptionalSchema<T> {
  return { ...s, optional: true };
}

export function arr<T>(item: Schema<T>, opts: { min?: number; max?: number } = {}): Schema<T[]> {
  const min = opts.min ?? 0;
  const max = opts.max ?? 100_000;
  const describe = `an array of ${min}–${max} items`;
  return {
    describe,
    parse: (v, path) => {
      if (!Array.isArray(v) || v.length < min || v.length > max) bad(path, describe, v);
      return v.map((x, i) => item.parse(x, `${path}[${i}]`));
    },
  };
}

/** A string-keyed map of one value schema (e.g. measurements). */
export function record<T>(value: Schema<T>, opts: { maxKeys?: number } = {}): Schema<Record<string, T>> {
  const maxKeys = opts.maxKeys ?? 1000;
  const describe = `an object of at most ${maxKeys} keys`;
  return {
    describe,
    parse: (v, path) => {
      if (!isRecord(v) || Object.keys(v).length > maxKeys) bad(path, describe, v);
      const out: Record<string, T> = {};
      for (const [k, x] of Object.entries(v)) out[k] = value.parse(x, `${path}.${k}`);
      return out;
    },
  };
}

type Shape = Record<string, Schema<unknown>>;
type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never }[keyof S];
type Flatten<T> = { [K in keyof T]: T[K] };
export type ObjOut<S extends Shape> = Flatten<{ [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }>;

/** An object with the declared keys; unknown keys are dropped (newer clients may add fields). */
export function obj<S extends Shape>(shape: S): Schema<ObjOut<S>> & { shape: S } {
  const describe = `an object {${Object.keys(shape).join(', ')}}`;
  return {
    shape,
    describe,
    parse: (v, path) => {
      if (!isRecord(v)) bad(path, describe, v);
      const out: Record<string, unknown> = {};
      for (const [k, s] of Object.entries(shape)) {
        const x = v[k];
        if (x === undefined) {
          if ('optional' in s) continue;
          bad(`${path ? `${path}.` : ''}${k}`, s.describe, undefined);
        }
        out[k] = s.parse(x, `${path ? `${path}.` : ''}${k}`);
      }
      // The keys and value types were each checked against `shape` just above.
      return out as ObjOut<S>;
    },
  };
}

/** Anything JSON (used only for free-form server-side fields such as metrics and stats). */
const json: Schema<unknown> = { describe: 'any JSON value', parse: (v) => v };

// ---------------------------------------------------------------------------------------------
// GeoJSON pieces that travel on the wire. Incoming geometry is checked strictly here (closed rings of
// finite numbers, vertex limits) because QuPath aborts a whole import on one bad ring.

export const MAX_VERTICES_PER_GEOMETRY = 100_000;

function ring(path: string, v: unknown, budget: { left: number }): Position[] {
  if (!Array.isArray(v) || v.length < 4) bad(path, 'a closed linear ring of ≥ 4 positions', v, 'E_GEOJSON_INVALID');
  budget.left -= v.length;
  if (budget.left < 0) bad(path, `at most ${MAX_VERTICES_PER_GEOMETRY} vertices per geometry`, `${v.length} more`, 'E_GEOJSON_INVALID');
  const out = v.map((p, i): Position => {
    if (!Array.isArray(p) || p.length < 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number' || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      bad(`${path}[${i}]`, 'a position [x, y] of finite numbers', p, 'E_GEOJSON_INVALID');
    }
    return [p[0], p[1]];
  });
  const a = out[0];
  const b = out[out.length - 1];
  if (a[0] !== b[0] || a[1] !== b[1]) bad(path, 'a closed ring (first position equal to the last)', `[${b[0]}, ${b[1]}] ≠ [${a[0]}, ${a[1]}]`, 'E_GEOJSON_INVALID');
  return out;
}

function polygonCoords(path: string, v: unknown, budget: { left: number }): Position[][] {
  if (!Array.isArray(v) || v.length < 1) bad(path, 'an array of ≥ 1 linear rings', v, 'E_GEOJSON_INVALID');
  return v.map((r, i) => ring(`${path}[${i}]`, r, budget));
}

export const polygonSchema: Schema<PolygonGeometry> = {
  describe: 'a GeoJSON Polygon in level-0 pixels',
  parse: (v, path) => {
    if (!isRecord(v) || v.type !== 'Polygon') bad(path, 'a GeoJSON Polygon', v, 'E_GEOJSON_INVALID');
    return { type: 'Polygon', coordinates: polygonCoords(`${path}.coordinates`, v.coordinates, { left: MAX_VERTICES_PER_GEOMETRY }) };
  },
};

export const areaGeometrySchema: Schema<AreaGeometry> = {
  describe: 'a GeoJSON Polygon or MultiPolygon in level-0 pixels',
  parse: (v, path) => {
    if (!isRecord(v)) bad(path, 'a GeoJSON Polygon or MultiPolygon', v, 'E_GEOJSON_INVALID');
    const budget = { left: MAX_VERTICES_PER_GEOMETRY };
    if (v.type === 'Polygon') return { type: 'Polygon', coordinates: polygonCoords(`${path}.coordinates`, v.coordinates, budget) };
    if (v.type === 'MultiPolygon') {
      const c = v.coordinates;
      if (!Array.isArray(c) || c.length < 1) bad(`${path}.coordinates`, 'an array of ≥ 1 polygons', c, 'E_GEOJSON_INVALID');
      return { type: 'MultiPolygon', coordinates: c.map((p, i) => polygonCoords(`${path}.coordinates[${i}]`, p, budget)) };
    }
    return bad(`${path}.type`, '"Polygon" or "MultiPolygon"', v.type, 'E_GEOJSON_INVALID');
  },
};

const rgb: Schema<Rgb> = {
  describe: 'a colour [r, g, b] of integers 0–255',
  parse: (v, path) => {
    const c = arr(num({ min: 0, max: 255, int: true }), { min: 3, max: 3 }).parse(v, path);
    return [c[0], c[1], c[2]];
  },
};

/** A Feature in the QuPath ≥ 0.4 dialect the server sends (qupath.md §5.4): UUID id, closed rings. */
export const wireFeatureSchema = obj({
  type: lit('Feature'),
  id: str({ min: 1, max: 64 }),
  geometry: areaGeometrySchema,
  properties: obj({
    objectType: lit('annotation', 'detection'),
    name: opt(str({ max: 200 })),
    classification: opt(obj({ name: str({ min: 1, max: 200 }), color: rgb })),
    measurements: opt(record(num())),
    metadata: opt(record(str({ max: 1000 }))),
  }),
});
export type WireFeature = Infer<typeof wireFeatureSchema>;

export const wireFeatureCollectionSchema = obj({
  type: lit('FeatureCollection'),
  features: arr(wireFeatureSchema),
});
export type WireFeatureCollection = Infer<typeof wireFeatureCollectionSchema>;

// ---------------------------------------------------------------------------------------------
// Shared pieces.

const requestId = str({ min: 1, max: 128 });
/** A registered slide id (what POST /api/slides answers) — never a path. */
export const slideIdSchema = str({ min: 1, max: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const modelVersion = str({ min: 1, max: 64, pattern: /^[A-Za-z0-9._-]+$/ });
const uuid = str({ min: 36, max: 36, pattern: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/ });

export const regionSchema = obj({
  x: num({ int: true }),
  y: num({ int: true }),
  width: num({ int: true, min: 1 }),
  height: num({ int: true, min: 1 }),
});

/** Server limits, announced in `welcome` so a client can stay inside them. All sizes in bytes or pixels. */
export const limitsSchema = obj({
  /** Text or binary frames larger than this get `E_LIMIT_FRAME_TOO_LARGE` (the connection stays open). */
  maxFrameBytes: num({ int: true, min: 1 }),
  /** Frames larger than this close the connection (WebSocket close 1009). */
  hardFrameBytes: num({ int: true, min: 1 }),
  /** Requests of one connection that may be queued or running at once. */
  maxPendingPerConnection: num({ int: true, min: 1 }),
  /** Requests of all connections that may be queued or running at once (beyond: `E_QUEUE_FULL`). */
  maxPendingGlobal: num({ int: true, min: 1 }),
  /** Size of an inline PNG (the binary frame that follows `predict.region` with slide "inline"). */
  maxInlineImageBytes: num({ int: true, min: 1 }),
  /** Width × height of an inline image after decoding. */
  maxInlineImagePixels: num({ int: true, min: 1 }),
  /** Output pixels of one predicted region: (width/downsample) × (height/downsample). */
  maxRegionPixels: num({ int: true, min: 1 }),
  maxCandidates: num({ int: true, min: 1 }),
  maxCorrectionItems: num({ int: true, min: 1 }),
});
export type ProtocolLimits = Infer<typeof limitsSchema>;

// ---------------------------------------------------------------------------------------------
// Client → server.

export const helloSchema = obj({
  type: lit('hello'),
  requestId,
  /** The protocol version the client speaks; the server closes with 4400 when it is not PROTOCOL_VERSION. */
  protocol: num({ int: true, min: 0 }),
  /** Required whenever the server does not listen on loopback only. */
  token: opt(str({ max: 512 })),
  client: obj({ name: str({ min: 1, max: 100 }), version: str({ max: 100 }) }),
});

export const predictOptionsSchema = obj({
  /** Flip test-time augmentation (default: what the model package endorses). */
  tta: opt(bool),
  /** Foreground probability threshold (default 0.5). */
  threshold: opt(num({ min: 0, max: 1 })),
  /** Drop objects smaller than this many level-0 pixels. */
  minAreaPx: opt(num({ min: 0 })),
});

export const predictRegionSchema = obj({
  type: lit('predict.region'),
  requestId,
  /** A registered slide id, or "inline": the pixels follow as the next binary frame (a PNG). */
  slide: str({ min: 1, max: 64, pattern: /^[A-Za-z0-9_-]+$/ }),
  /** Level-0 pixels; for inline pixels, where the image's top-left corner lies on the slide. */
  region: regionSchema,
  downsample: num({ min: 1, max: 64 }),
  /** A model version; default the active one. */
  model: opt(modelVersion),
  options: opt(predictOptionsSchema),
  /** Present iff slide is "inline": the announced PNG size of the binary frame that follows. */
  image: opt(obj({ format: lit('png'), byteLength: num({ int: true, min: 1 }) })),
});

export const candidatesNextSchema = obj({
  type: lit('candidates.next'),
  requestId,
  slide: slideIdSchema,
  limit: num({ int: true, min: 1 }),
  order: lit('energy'),
});

/** Largest correction revision (fits a Java int, so clients can keep it in one). */
export const MAX_REVISION = 2_147_483_647;

export const correctionItemSchema = obj({
  /** The object's UUID: as issued by the server (candidates, predictions) or fresh for `added`. */
  id: uuid,
  action: lit('accepted', 'rejected', 'edited', 'added'),
  /** Required for edited and added; the new outline in level-0 pixels. */
  geometry: opt(areaGeometrySchema),
  class: opt(str({ min: 1, max: 200 })),
  /**
   * The client's edit counter for this object: 1 for its first decision, +1 for every later decision
   * about the same object, unchanged when the same submission is retried. The stored correction changes
   * only for a higher revision (ties: the greater submissionId), so a late retry of an older decision
   * cannot overwrite a newer one. Absent (clients before revisions): the submission wins as before.
   */
  revision: opt(num({ int: true, min: 1, max: MAX_REVISION })),
});
export type CorrectionItem = Infer<typeof correctionItemSchema>;

export const correctionsSubmitSchema = obj({
  type: lit('corrections.submit'),
  requestId,
  slide: slideIdSchema,
  /** Areas the pathologist reviewed completely: inside them, unsubmitted pixels are background. */
  reviewedRegions: arr(polygonSchema, { max: 1000 }),
  items: arr(correctionItemSchema),
  /**
   * A UUID the client makes once per submission and keeps across retries: a retry with the same id is
   * answered with the first ack and stores nothing twice. Absent: the server makes one (no dedup).
   */
  submissionId: opt(uuid),
});

export const trainStartSchema = obj({
  type: lit('train.start'),
  requestId,
  /** quick: refine the head on the corrections (seconds–minutes); full: train a new network. */
  mode: lit('quick', 'full'),
  /** Slide ids to learn from; default every slide with corrections. */
  slides: opt(arr(slideIdSchema, { min: 1, max: 10_000 })),
});

export const jobCancelSchema = obj({ type: lit('job.cancel'), requestId, jobId: str({ min: 1, max: 64 }) });
export const modelActivateSchema = obj({ type: lit('model.activate'), requestId, version: modelVersion });
export const modelRollbackSchema = obj({ type: lit('model.rollback'), requestId });

export const clientSchemas = {
  hello: helloSchema,
  'predict.region': predictRegionSchema,
  'candidates.next': candidatesNextSchema,
  'corrections.submit': correctionsSubmitSchema,
  'train.start': trainStartSchema,
  'job.cancel': jobCancelSchema,
  'model.activate': modelActivateSchema,
  'model.rollback': modelRollbackSchema,
} as const;
export type ClientMessageType = keyof typeof clientSchemas;
export type ClientMessageOf<T extends ClientMessageType> = Infer<(typeof clientSchemas)[T]>;
export type ClientMessage = { [T in ClientMessageType]: ClientMessageOf<T> }[ClientMessageType];

// ---------------------------------------------------------------------------------------------
// Server → client.

const pushRequestId = nullable(requestId);
const modelInfo = obj({
  version: str({ min: 1, max: 64 }),
  parent: nullable(str({ max: 64 })),
  active: bool,
  promoted: bool,
  createdAt: str({ max: 40 }),
  metrics: record(num()),
});
export type ModelInfo = Infer<typeof modelInfo>;

export const welcomeSchema = obj({
  type: lit('welcome'),
  requestId,
  server: obj({ name: str(), version: str() }),
  protocol: num({ int: true }),
  /** Known model versions (newest first) and the active one; `active` is null when no model is loaded. */
  models: obj({ active: nullable(str()), versions: arr(modelInfo) }),
  limits: limitsSchema,
  /** Why something is unavailable, e.g. "no model is active: predict.region will fail with E_NO_MODEL". */
  notices: arr(str()),
});

export const predictProgressSchema = obj({
  type: lit('predict.progress'),
  requestId,
  done: num({ int: true, min: 0 }),
  total: num({ int: true, min: 0 }),
  message: opt(str()),
});

export const predictResultSchema = obj({
  type: lit('predict.result'),
  requestId,
  slide: str(),
  region: regionSchema,
  downsample: num(),
  objects: wireFeatureCollectionSchema,
  /** Timings and counts, e.g. {tiles, tilesSkipped, objects, ms}. */
  stats: record(num()),
  modelVersion: str(),
});

export const candidatesSchema = obj({
  type: lit('candidates'),
  requestId,
  slide: str(),
  /** Lowest mean energy first; each feature has a UUID id and `measurements.energy`. */
  objects: wireFeatureCollectionSchema,
  /** Unreviewed objects left on the slide after these. */
  remaining: num({ int: true, min: 0 }),
  modelVersion: str(),
});

export const correctionsAckSchema = obj({
  type: lit('corrections.ack'),
  requestId,
  slide: str(),
  /** Item ids now durably stored (sent only after the database commit); a client never resends these. */
  accepted: arr(str()),
  submissionId: str(),
  /**
   * Accepted items that did not change the stored correction because a newer revision of the same
   * object was already stored (kept in the submission history only): that stored revision and the
   * submission that made it. A client's next decision about the object should use revision + 1.
   */
  stale: arr(obj({ id: str(), revision: num({ int: true, min: 1 }), submissionId: str() })),
});

export const jobStateSchema = lit('queued', 'running', 'done', 'failed', 'cancelled');
export type JobState = Infer<typeof jobStateSchema>;

export const jobStatusSchema = obj({
  type: lit('job.status'),
  requestId: pushRequestId,
  jobId: str(),
  kind: str(),
  state: jobStateSchema,
  message: opt(str()),
});

export const trainProgressSchema = obj({
  type: lit('train.progress'),
  requestId: pushRequestId,
  jobId: str(),
  phase: str(),
  step: num({ min: 0 }),
  total: num({ min: 0 }),
  loss: nullable(num()),
  dice: nullable(num()),
  /** Seconds left, null while unknown. */
  eta: nullable(num({ min: 0 })),
});

export const modelUpdatedSchema = obj({
  type: lit('model.updated'),
  requestId: pushRequestId,
  jobId: nullable(str()),
  version: str(),
  parent: nullable(str()),
  /**
   * The promotion gate's numbers: the new version's (dice, f1, tp, fp, fn on the held-back reviewed
   * regions; rejectedChecked, rejectedReturned, confirmedChecked, confirmedMissed in all reviewed
   * regions; referenceChecked, referenceMissed on the parent's most confident objects outside them)
   * and its parent's on the same places (parentDice, parentF1, parentTp, parentFp, parentFn,
   * parentRejectedReturned, parentConfirmedMissed, parentReferenceMissed), plus training facts
   * (trainSeconds…).
   */
  metrics: record(num()),
  /** True when the new version passed the promotion gate (docs/server.md) and is now active. */
  promoted: bool,
  /**
   * The gate's stable reason code: PROMOTED, PROMOTED_UNVALIDATED (no held-back region yet),
   * REFUSED_F1_DROP, REFUSED_FP_INCREASE, REFUSED_REJECTED_RETURNED, REFUSED_CONFIRMED_LOST,
   * REFUSED_REFERENCE_LOST (misses more of the parent's most confident objects outside the reviewed
   * regions), REFUSED_DICE_DROP or REFUSED_NOT_SCORED.
   */
  reason: opt(str({ max: 64 })),
  active: nullable(str()),
});

export const modelActiveSchema = obj({
  type: lit('model.active'),
  requestId: pushRequestId,
  active: nullable(str()),
  previous: nullable(str()),
});

export const errorSchema = obj({
  type: lit('error'),
  /** null when the failing frame had no readable requestId (malformed JSON, oversize frame). */
  requestId: pushRequestId,
  code: str({ min: 3, pattern: /^E_[A-Z0-9_]+$/ }),
  message: str(),
  details: opt(record(json)),
});

export const serverSchemas = {
  welcome: welcomeSchema,
  'predict.progress': predictProgressSchema,
  'predict.result': predictResultSchema,
  candidates: candidatesSchema,
  'corrections.ack': correctionsAckSchema,
  'job.status': jobStatusSchema,
  'train.progress': trainProgressSchema,
  'model.updated': modelUpdatedSchema,
  'model.active': modelActiveSchema,
  error: errorSchema,
} as const;
export type ServerMessageType = keyof typeof serverSchemas;
export type ServerMessageOf<T extends ServerMessageType> = Infer<(typeof serverSchemas)[T]>;
export type ServerMessage = { [T in ServerMessageType]: ServerMessageOf<T> }[ServerMessageType];

// ---------------------------------------------------------------------------------------------
// Parsing at the edge.

/** WebSocket close codes the server uses (4xxx = application, per RFC 6455 §7.4.2). */
export const CloseCodes = {
  /** hello carried a protocol version this server does not speak. */
  ProtocolVersion: { code: 4400, reason: 'unsupported protocol version' },
  /** Token missing or wrong. */
  Unauthorized: { code: 4401, reason: 'missing or wrong token' },
  /** No hello within the handshake time. */
  HelloTimeout: { code: 4408, reason: 'no hello received in time' },
  /** Too many connections. */
  TooManyConnections: { code: 4429, reason: 'too many connections' },
  /** Server shutting down. */
  GoingAway: { code: 1001, reason: 'server shutting down' },
} as const;

function readRequestId(v: Record<string, unknown>): string | null {
  return typeof v.requestId === 'string' && v.requestId.length > 0 && v.requestId.length <= 128 ? v.requestId : null;
}

export type ParseOutcome<M> = { ok: true; message: M } | { ok: false; requestId: string | null; error: AppError };

function parseWith<M>(schemas: Record<string, Schema<unknown>>, text: string | unknown, side: string): ParseOutcome<M> {
  let value: unknown = text;
  if (typeof text === 'string') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { ok: false, requestId: null, error: new AppError('E_PROTOCOL_MALFORMED_JSON', `frame is not valid JSON: ${(err as Error).message}`) };
    }
  }
  if (!isRecord(value)) return { ok: false, requestId: null, error: new AppError('E_PROTOCOL_BAD_MESSAGE', 'a message must be a JSON object with "type" and "requestId"') };
  const rid = readRequestId(value);
  const type = value.type;
  if (typeof type !== 'string' || !Object.hasOwn(schemas, type)) {
    return {
      ok: false,
      requestId: rid,
      error: new AppError('E_PROTOCOL_UNKNOWN_TYPE', `unknown ${side} message type ${JSON.stringify(type)}; protocol v${PROTOCOL_VERSION} knows ${Object.keys(schemas).join(', ')} (are client and server versions aligned?)`),
    };
  }
  try {
    // schemas[type] is the schema registered for exactly this `type`, so its output is that member of M.
    return { ok: true, message: schemas[type].parse(value, '') as M };
  } catch (err) {
    if (err instanceof AppError) return { ok: false, requestId: rid, error: err };
    throw err;
  }
}

/** Parses one text frame (or an already-decoded value) from a client. Never throws on bad input. */
export function parseClientMessage(text: string | unknown): ParseOutcome<ClientMessage> {
  return parseWith<ClientMessage>(clientSchemas, text, 'client');
}

/** Parses one message from the server (tests and clients). Never throws on bad input. */
export function parseServerMessage(text: string | unknown): ParseOutcome<ServerMessage> {
  return parseWith<ServerMessage>(serverSchemas, text, 'server');
}
