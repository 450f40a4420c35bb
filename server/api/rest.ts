// REST routes (express 5) under /api, plus the status page at /. JSON in and out; every failure is
// `{error: {code, message}}` with the status from http-errors.ts. When the server has a token, every
// route except /api/health and /api/version needs `Authorization: Bearer T` (the status page also
// accepts `?token=T`, for a browser).
import express, { type Request, type Response, type NextFunction, type Router } from 'express';
import { AppError } from '../contracts/errors.ts';
import type { QuPathObject } from '../contracts/geojson.ts';
import { PROTOCOL_VERSION } from '../contracts/protocol.ts';
import { toQuPathFeatureCollection } from '../objects/geojson-write.ts';
import type { ImportOptions } from '../models/import-onnx.ts';
import { LOUPE_VERSION } from '../lib/version.ts';
import { errorMiddleware, sendError } from './http-errors.ts';
import type { Services } from './services.ts';
import { SCHEMA_VERSION, type SlideRecord } from './store.ts';
import { renderStatusPage } from './status-page.ts';
import { tokenMatches } from './ws-session.ts';

type Handler = (req: Request, res: Response) => Promise<void> | void;

/** Wraps a handler so a thrown AppError becomes the JSON error answer. */
function route(fn: Handler): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    try {
      await fn(req, res);
    } catch (err) {
      sendError(res, err);
    }
  };
}

function param(req: Request, name: string): string {
  const v = req.params[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw new AppError('E_BAD_REQUEST', `URL parameter ${name} is missing or too long`);
  return v;
}

function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  return typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Record<string, unknown>) : {};
}

const triple = (v: unknown): [number, number, number] | undefined =>
  Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? [Number(v[0]), Number(v[1]), Number(v[2])] : undefined;

/** What a bare .onnx import may be told (models/import-onnx.ts validates the values). */
function onnxImportOptions(v: unknown): ImportOptions {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  const o: Record<string, unknown> = { ...v };
  const out: ImportOptions = {};
  const mean = triple(o.mean);
  const std = triple(o.std);
  if (mean) out.mean = mean;
  if (std) out.std = std;
  if (typeof o.downsample === 'number') out.downsample = o.downsample;
  if (typeof o.tile === 'number') out.tile = o.tile;
  if (o.layout === 'NCHW' || o.layout === 'NHWC') out.layout = o.layout;
  if (typeof o.name === 'string') out.name = o.name;
  if (o.outputKind === 'logits' || o.outputKind === 'softmax' || o.outputKind === 'sigmoid') out.outputKind = o.outputKind;
  if (typeof o.foregroundChannel === 'number') out.foregroundChannel = o.foregroundChannel;
  if (Array.isArray(o.classes) && o.classes.every((c) => typeof c === 'string')) out.classes = o.classes.map(String);
  return out;
}

export function slideSummary(s: SlideRecord): { id: string; name: string; width: number | null; height: number | null; mpp: number | null; status: string } {
  return { id: s.id, name: s.name, width: s.width, height: s.height, mpp: s.mpp, status: s.status };
}

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.startsWith('Bearer ')) return h.slice(7);
  return typeof req.query.token === 'string' ? req.query.token : undefined;
}

/** Exports a slide's corrections in the QuPath dialect, ids as submitted. */
export function correctionsGeoJson(services: Services, slideId: string): { featureCollection: ReturnType<typeof toQuPathFeatureCollection>['featureCollection']; unresolved: number } {
  services.store.requireSlide(slideId);
  const objects: QuPathObject[] = [];
  let unresolved = 0;
  for (const c of services.store.listCorrections(slideId)) {
    const predicted = c.geometry ? undefined : services.store.findObject(c.itemId);
    const geometry = c.geometry ?? predicted?.feature.geometry;
    if (!geometry) {
      unresolved++;
      continue;
    }
    const className = c.class ?? predicted?.feature.properties.classification?.name ?? null;
    objects.push({
      id: c.itemId,
      idGenerated: false,
      kind: 'annotation',
      className,
      classColor: predicted?.feature.properties.classification?.color ?? null,
      geometry,
      measurements: {},
      metadata: { 'loupe.action': c.action, 'loupe.revision': String(c.revision), 'loupe.submission': c.submissionId, 'loupe.updated': c.updatedAt },
      locked: false,
      name: null,
      color: null,
    });
  }
  return { featureCollection: toQuPathFeatureCollection(objects, { mirrorMeasurements: 'none' }).featureCollection, unresolved };
}

export function createRestApp(services: Services): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));

  app.get('/api/health', (_req, res) => {
    res.json({ ok: true, uptimeSeconds: Math.round((Date.now() - services.startedAt) / 1000), queue: services.queue.stats() });
  });
  app.get('/api/version', (_req, res) => {
    res.json({ name: 'loupe', version: LOUPE_VERSION, protocol: PROTOCOL_VERSION, schema: SCHEMA_VERSION });
  });

  const auth = (req: Request, res: Response, next: NextFunction): void => {
    if (tokenMatches(services.config.token, bearer(req))) return next();
    sendError(res, new AppError('E_AUTH_TOKEN', 'missing or wrong token: send "Authorization: Bearer <token>" (the --token the server was started with)'));
  };

  app.get('/', auth, (_req, res) => {
    res.type('html').send(renderStatusPage(services));
  });

  const api: Router = express.Router();
  api.use(auth);

  api.get('/slides', route((_req, res) => {
    res.json(services.store.listSlides().map(slideSummary));
  }));
  api.post('/slides', route((req, res) => {
    const b = body(req);
    const name = typeof b.name === 'string' && b.name.length > 0 && b.name.length <= 200 ? b.name : undefined;
    const r = services.registerSlide(b.path, name);
    res.status(r.created ? 202 : 200).json({ ...slideSummary(r.slide), jobId: r.job?.id ?? null });
  }));
  api.get('/slides/:id', route((req, res) => {
    const s = services.store.requireSlide(param(req, 'id'));
    res.json({ ...slideSummary(s), format: s.format, error: s.error, createdAt: s.createdAt, corrections: services.store.listCorrections(s.id).length, reviewedRegions: services.store.listReviewedRegions(s.id).length });
  }));
  api.get('/slides/:id/corrections', route((req, res) => {
    const { featureCollection, unresolved } = correctionsGeoJson(services, param(req, 'id'));
    res.setHeader('X-Loupe-Unresolved', String(unresolved));
    res.type('application/geo+json').send(JSON.stringify(featureCollection));
  }));
  // The audit trail: every submission of the slide, oldest first, each item as received with what it
  // did (applied, unchanged, or stale: a newer revision was already stored).
  api.get('/slides/:id/submissions', route((req, res) => {
    const s = services.store.requireSlide(param(req, 'id'));
    res.json(services.store.listSubmissions(s.id));
  }));

  api.get('/models', route((_req, res) => {
    res.json(services.modelList());
  }));
  api.post('/models/import', route(async (req, res) => {
    const b = body(req);
    const version = typeof b.version === 'string' ? b.version : undefined;
    const m = await services.importModel(b.path, { version, activate: b.activate === true, onnx: onnxImportOptions(b.onnx) });
    res.status(201).json(services.store.modelInfo(m, services.store.activeVersion()));
  }));
  api.post('/models/rollback', route(async (_req, res) => {
    res.json(await services.rollbackModel());
  }));
  api.post('/models/:version/activate', route(async (req, res) => {
    res.json(await services.activateModel(param(req, 'version')));
  }));
  api.get('/models/:version', route((req, res) => {
    const m = services.store.requireModel(param(req, 'version'));
    res.json({ ...services.store.modelInfo(m, services.store.activeVersion()), data: m.data });
  }));

  api.get('/jobs', route((_req, res) => {
    res.json(services.store.listJobs());
  }));
  api.get('/jobs/:id', route((req, res) => {
    res.json(services.store.requireJob(param(req, 'id')));
  }));
  const cancel = route(async (req, res) => {
    res.json(await services.jobs.cancel(param(req, 'id')));
  });
  api.post('/jobs/:id/cancel', cancel);
  api.delete('/jobs/:id', cancel);

  api.use((_req, res) => sendError(res, new AppError('E_NOT_FOUND', 'no such API route (see docs/server.md)')));
  app.use('/api', api);
  app.use((_req, res) => sendError(res, new AppError('E_NOT_FOUND', 'not found: the API is under /api, the WebSocket at /ws')));
  app.use(errorMiddleware);
  return app;
}
