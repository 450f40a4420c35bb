// The server's durable state: one SQLite database (better-sqlite3, WAL, synchronous = FULL) in the
// data directory holding slides, model versions, predicted objects and their review state,
// corrections, reviewed regions and jobs. Every write that a client is told about (an ack, a job id)
// is committed before the answer leaves; a correction submission is one transaction, so after a crash
// it is either there whole or absent. Every submitted item is kept as history (submission_items), and
// per-object revisions decide which decision is current, so a late retry never overwrites a newer
// correction (docs/protocol.md, "Revisions, retries and stale items"). Large blobs (model packages,
// slide caches) live as files next to the database and only their paths are stored here. The schema
// evolves by numbered migrations recorded in PRAGMA user_version.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { AppError } from '../contracts/errors.ts';
import type { AreaGeometry, CorrectionItem, JobState, ModelInfo, PolygonGeometry, WireFeature } from '../contracts/protocol.ts';
import { centroidOf, containsPoint } from '../review/area-geometry.ts';

/** Migration n (1-based) brings the schema from version n−1 to n. Never edit a released entry. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE slides (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    width INTEGER, height INTEGER, mpp REAL,
    format TEXT,
    status TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE models (
    version TEXT PRIMARY KEY,
    parent TEXT,
    dir TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    data TEXT NOT NULL DEFAULT '{}',
    promoted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
  );
  CREATE TABLE model_activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT,
    at TEXT NOT NULL
  );
  CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    slide_id TEXT NOT NULL REFERENCES slides(id),
    model_version TEXT NOT NULL,
    energy REAL NOT NULL,
    cx REAL NOT NULL, cy REAL NOT NULL,
    feature TEXT NOT NULL,
    source TEXT NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0,
    reviewed INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX objects_queue ON objects(slide_id, model_version, source, reviewed, energy);
  CREATE TABLE slide_predictions (
    slide_id TEXT NOT NULL REFERENCES slides(id),
    model_version TEXT NOT NULL,
    object_count INTEGER NOT NULL,
    completed_at TEXT NOT NULL,
    PRIMARY KEY (slide_id, model_version)
  );
  CREATE TABLE submissions (
    id TEXT PRIMARY KEY,
    slide_id TEXT NOT NULL REFERENCES slides(id),
    request_id TEXT,
    item_count INTEGER NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE corrections (
    item_id TEXT PRIMARY KEY,
    slide_id TEXT NOT NULL REFERENCES slides(id),
    submission_id TEXT NOT NULL REFERENCES submissions(id),
    action TEXT NOT NULL,
    geometry TEXT,
    class TEXT,
    revision INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX corrections_slide ON corrections(slide_id);
  CREATE TABLE reviewed_regions (
    id TEXT PRIMARY KEY,
    slide_id TEXT NOT NULL REFERENCES slides(id),
    submission_id TEXT NOT NULL REFERENCES submissions(id),
    geometry TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX reviewed_regions_slide ON reviewed_regions(slide_id);
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE INDEX jobs_state ON jobs(state, priority, created_at);
  `,
  // 2: correction revisions. Every submitted item is kept in submission_items (the audit trail, stale
  // ones included); a submission remembers a hash of what it carried and the ack it got, so a retry
  // with the same client-made id is answered the same and stores nothing twice. Items of earlier
  // submissions survive only as their current correction: those are copied in as history.
  `
  ALTER TABLE submissions ADD COLUMN payload_hash TEXT;
  ALTER TABLE submissions ADD COLUMN ack TEXT;
  CREATE TABLE submission_items (
    submission_id TEXT NOT NULL REFERENCES submissions(id),
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL,
    geometry TEXT,
    class TEXT,
    revision INTEGER,
    outcome TEXT NOT NULL,
    PRIMARY KEY (submission_id, position)
  );
  CREATE INDEX submission_items_item ON submission_items(item_id);
  INSERT INTO submission_items (submission_id, position, item_id, action, geometry, class, revision, outcome)
    SELECT submission_id, rowid, item_id, action, geometry, class, NULL, 'applied' FROM corrections;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export type SlideStatus = 'registered' | 'converting' | 'ready' | 'failed';

export interface SlideRecord {
  id: string;
  name: string;
  path: string;
  width: number | null;
  height: number | null;
  mpp: number | null;
  format: string | null;
  status: SlideStatus;
  error: string | null;
  createdAt: string;
}

export interface ModelRecord {
  version: string;
  parent: string | null;
  dir: string;
  metrics: Record<string, number>;
  /** Provenance: the data, parameters and job that made this version. */
  data: Record<string, unknown>;
  promoted: boolean;
  createdAt: string;
}

export interface CorrectionRecord {
  itemId: string;
  slideId: string;
  submissionId: string;
  action: CorrectionItem['action'];
  geometry: AreaGeometry | null;
  class: string | null;
  revision: number;
  updatedAt: string;
}

/**
 * What one submitted item did: `applied` changed the stored correction; `unchanged` carried exactly the
 * stored decision at the same revision; `stale` lost to a newer stored revision (kept here only).
 */
export type SubmissionOutcome = 'applied' | 'unchanged' | 'stale';

/** A stored correction newer than a submitted item, as reported in the ack's `stale` list. */
export interface StaleItem {
  id: string;
  revision: number;
  submissionId: string;
}

export interface SubmitResult {
  submissionId: string;
  accepted: string[];
  stale: StaleItem[];
  /** True when this was a retry of a stored submission: nothing was written, the first ack is repeated. */
  duplicate: boolean;
}

/** One item of a submission as received, with what it did (the audit trail). */
export interface SubmissionItemRecord {
  submissionId: string;
  position: number;
  itemId: string;
  action: CorrectionItem['action'];
  geometry: AreaGeometry | null;
  class: string | null;
  /** As submitted; null for clients that send no revisions. */
  revision: number | null;
  outcome: SubmissionOutcome;
}

export interface SubmissionRecord {
  id: string;
  slideId: string;
  requestId: string | null;
  createdAt: string;
  items: SubmissionItemRecord[];
}

export interface ReviewedRegionRecord {
  id: string;
  slideId: string;
  submissionId: string;
  geometry: PolygonGeometry;
  createdAt: string;
}

export interface StoredObject {
  id: string;
  slideId: string;
  modelVersion: string;
  energy: number;
  feature: WireFeature;
  seen: boolean;
  reviewed: boolean;
}

export interface JobRecord {
  id: string;
  kind: string;
  state: JobState;
  priority: number;
  params: Record<string, unknown>;
  progress: Record<string, unknown>;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const now = (): string => new Date().toISOString();
export const shortId = (): string => randomBytes(6).toString('hex');

function parseJson<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  return JSON.parse(text) as T;
}

interface SlideRow { id: string; name: string; path: string; width: number | null; height: number | null; mpp: number | null; format: string | null; status: SlideStatus; error: string | null; created_at: string }
interface ModelRow { version: string; parent: string | null; dir: string; metrics: string; data: string; promoted: number; created_at: string }
interface CorrectionRow { item_id: string; slide_id: string; submission_id: string; action: CorrectionItem['action']; geometry: string | null; class: string | null; revision: number; updated_at: string }
interface SubmissionItemRow { submission_id: string; position: number; item_id: string; action: CorrectionItem['action']; geometry: string | null; class: string | null; revision: number | null; outcome: SubmissionOutcome }
interface RegionRow { id: string; slide_id: string; submission_id: string; geometry: string; created_at: string }
interface ObjectRow { id: string; slide_id: string; model_version: string; energy: number; feature: string; seen: number; reviewed: number }
interface JobRow { id: string; kind: string; state: JobState; priority: number; params: string; progress: string; result: string | null; error: string | null; created_at: string; started_at: string | null; finished_at: string | null }

const toSlide = (r: SlideRow): SlideRecord => ({ id: r.id, name: r.name, path: r.path, width: r.width, height: r.height, mpp: r.mpp, format: r.format, status: r.status, error: r.error, createdAt: r.created_at });
const toModel = (r: ModelRow): ModelRecord => ({ version: r.version, parent: r.parent, dir: r.dir, metrics: parseJson(r.metrics, {}), data: parseJson(r.data, {}), promoted: r.promoted === 1, createdAt: r.created_at });
const toCorrection = (r: CorrectionRow): CorrectionRecord => ({ itemId: r.item_id, slideId: r.slide_id, submissionId: r.submission_id, action: r.action, geometry: parseJson<AreaGeometry | null>(r.geometry, null), class: r.class, revision: r.revision, updatedAt: r.updated_at });
const toSubmissionItem = (r: SubmissionItemRow): SubmissionItemRecord => ({ submissionId: r.submission_id, position: r.position, itemId: r.item_id, action: r.action, geometry: parseJson<AreaGeometry | null>(r.geometry, null), class: r.class, revision: r.revision, outcome: r.outcome });
const toRegion = (r: RegionRow): ReviewedRegionRecord => ({ id: r.id, slideId: r.slide_id, submissionId: r.submission_id, geometry: parseJson<PolygonGeometry>(r.geometry, { type: 'Polygon', coordinates: [] }), createdAt: r.created_at });
const toObject = (r: ObjectRow): StoredObject => ({ id: r.id, slideId: r.slide_id, modelVersion: r.model_version, energy: r.energy, feature: parseJson<WireFeature>(r.feature, { type: 'Feature', id: r.id, geometry: { type: 'Polygon', coordinates: [] }, properties: { objectType: 'annotation' } }), seen: r.seen === 1, reviewed: r.reviewed === 1 });
const toJob = (r: JobRow): JobRecord => ({ id: r.id, kind: r.kind, state: r.state, priority: r.priority, params: parseJson(r.params, {}), progress: parseJson(r.progress, {}), result: parseJson(r.result, null), error: parseJson(r.error, null), createdAt: r.created_at, startedAt: r.started_at, finishedAt: r.finished_at });

export class Store {
  readonly #db: Database.Database;
  readonly path: string;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, 'loupe.db');
    try {
      this.#db = new Database(this.path);
      this.#db.pragma('journal_mode = WAL');
      // FULL: a commit is on disk before better-sqlite3 returns, so an ack sent afterwards survives kill -9 and power loss.
      this.#db.pragma('synchronous = FULL');
      this.#db.pragma('foreign_keys = ON');
      this.#db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new AppError('E_STORE_OPEN', `cannot open the database ${this.path}: ${(err as Error).message} (check --data)`, { cause: err });
    }
    this.#migrate();
  }

  #migrate(): void {
    const current = Number(this.#db.pragma('user_version', { simple: true }));
    if (current > SCHEMA_VERSION) {
      throw new AppError('E_STORE_VERSION', `${this.path} has schema version ${current}, newer than this loupe (${SCHEMA_VERSION}); upgrade loupe or use another --data`);
    }
    for (let v = current; v < SCHEMA_VERSION; v++) {
      this.#db.transaction(() => {
        this.#db.exec(MIGRATIONS[v]);
        this.#db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  /** The durability settings of this connection (synchronous 2 = FULL). */
  durability(): { journalMode: string; synchronous: number } {
    return { journalMode: String(this.#db.pragma('journal_mode', { simple: true })), synchronous: Number(this.#db.pragma('synchronous', { simple: true })) };
  }

  // --- slides -------------------------------------------------------------------------------

  addSlide(s: { name: string; path: string; status: SlideStatus; width?: number | null; height?: number | null; mpp?: number | null; format?: string | null; id?: string }): SlideRecord {
    const id = s.id ?? shortId();
    this.#db
      .prepare('INSERT INTO slides (id, name, path, width, height, mpp, format, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(id, s.name, s.path, s.width ?? null, s.height ?? null, s.mpp ?? null, s.format ?? null, s.status, now());
    return this.requireSlide(id);
  }

  updateSlide(id: string, patch: Partial<Pick<SlideRecord, 'width' | 'height' | 'mpp' | 'format' | 'status' | 'error'>>): SlideRecord {
    const cur = this.requireSlide(id);
    const n = { ...cur, ...patch };
    this.#db.prepare('UPDATE slides SET width = ?, height = ?, mpp = ?, format = ?, status = ?, error = ? WHERE id = ?').run(n.width, n.height, n.mpp, n.format, n.status, n.error, id);
    return this.requireSlide(id);
  }

  getSlide(id: string): SlideRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM slides WHERE id = ?').get(id) as SlideRow | undefined;
    return r ? toSlide(r) : undefined;
  }

  findSlideByPath(path: string): SlideRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM slides WHERE path = ?').get(path) as SlideRow | undefined;
    return r ? toSlide(r) : undefined;
  }

  requireSlide(id: string): SlideRecord {
    const s = this.getSlide(id);
    if (!s) throw new AppError('E_SLIDE_NOT_FOUND', `no slide with id "${id}" (GET /api/slides lists them; register one with POST /api/slides {path})`);
    return s;
  }

  listSlides(): SlideRecord[] {
    return (this.#db.prepare('SELECT * FROM slides ORDER BY created_at, id').all() as SlideRow[]).map(toSlide);
  }

  // --- models -------------------------------------------------------------------------------

  addModel(m: { version: string; parent: string | null; dir: string; metrics?: Record<string, number>; data?: Record<string, unknown>; promoted?: boolean }): ModelRecord {
    try {
      this.#db
        .prepare('INSERT INTO models (version, parent, dir, metrics, data, promoted, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(m.version, m.parent, m.dir, JSON.stringify(m.metrics ?? {}), JSON.stringify(m.data ?? {}), m.promoted ? 1 : 0, now());
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new AppError('E_MODEL_EXISTS', `model version "${m.version}" already exists; choose another name`);
      throw err;
    }
    return this.requireModel(m.version);
  }

  getModel(version: string): ModelRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM models WHERE version = ?').get(version) as ModelRow | undefined;
    return r ? toModel(r) : undefined;
  }

  requireModel(version: string): ModelRecord {
    const m = this.getModel(version);
    if (!m) throw new AppError('E_MODEL_NOT_FOUND', `no model version "${version}" (GET /api/models lists them)`);
    return m;
  }

  listModels(): ModelRecord[] {
    return (this.#db.prepare('SELECT * FROM models ORDER BY created_at DESC, version DESC').all() as ModelRow[]).map(toModel);
  }

  activeVersion(): string | null {
    const r = this.#db.prepare('SELECT version FROM model_activations ORDER BY seq DESC LIMIT 1').get() as { version: string | null } | undefined;
    return r?.version ?? null;
  }

  /** Makes `version` active (null: none); returns the previously active version. */
  activateModel(version: string | null): string | null {
    return this.#db.transaction(() => {
      if (version !== null) this.requireModel(version);
      const previous = this.activeVersion();
      if (previous !== version) this.#db.prepare('INSERT INTO model_activations (version, at) VALUES (?, ?)').run(version, now());
      return previous;
    })();
  }

  /**
   * Re-activates the version that was active before the current one (activation history), so a
   * rollback undoes the last activation or promotion; throws when there is nothing to roll back to.
   */
  rollbackModel(): { active: string; previous: string | null } {
    return this.#db.transaction(() => {
      const rows = this.#db.prepare('SELECT seq, version FROM model_activations ORDER BY seq DESC').all() as { seq: number; version: string | null }[];
      const current = rows[0]?.version ?? null;
      const target = rows.find((r) => r.version !== null && r.version !== current && this.getModel(r.version) !== undefined);
      if (!target || target.version === null) throw new AppError('E_NO_ROLLBACK', 'there is no earlier active model version to roll back to');
      this.#db.prepare('INSERT INTO model_activations (version, at) VALUES (?, ?)').run(target.version, now());
      return { active: target.version, previous: current };
    })();
  }

  modelInfo(m: ModelRecord, active: string | null): ModelInfo {
    return { version: m.version, parent: m.parent, active: m.version === active, promoted: m.promoted, createdAt: m.createdAt, metrics: m.metrics };
  }

  // --- predicted objects and review state --------------------------------------------------

  /**
   * Replaces the slide's predicted objects for one model version (a whole-slide prediction). Objects
   * whose centre lies in an already reviewed region, or that already have a correction, start reviewed.
   */
  replaceObjects(slideId: string, modelVersion: string, features: { feature: WireFeature; energy: number }[]): void {
    this.#db.transaction(() => {
      this.#db.prepare("DELETE FROM objects WHERE slide_id = ? AND model_version = ? AND source = 'slide'").run(slideId, modelVersion);
      const regions = this.listReviewedRegions(slideId).map((r) => r.geometry);
      const corrected = new Set((this.#db.prepare('SELECT item_id FROM corrections WHERE slide_id = ?').all(slideId) as { item_id: string }[]).map((r) => r.item_id));
      const ins = this.#db.prepare("INSERT OR REPLACE INTO objects (id, slide_id, model_version, energy, cx, cy, feature, source, reviewed) VALUES (?, ?, ?, ?, ?, ?, ?, 'slide', ?)");
      for (const { feature, energy } of features) {
        const c = centroidOf(feature.geometry);
        const reviewed = corrected.has(feature.id) || regions.some((g) => containsPoint(g, c));
        ins.run(feature.id, slideId, modelVersion, energy, c[0], c[1], JSON.stringify(feature), reviewed ? 1 : 0);
      }
      this.#db
        .prepare('INSERT OR REPLACE INTO slide_predictions (slide_id, model_version, object_count, completed_at) VALUES (?, ?, ?, ?)')
        .run(slideId, modelVersion, features.length, now());
    })();
  }

  /**
   * Remembers objects issued by a region prediction, so a correction that refers to one by id can
   * be exported with its outline; they are not review candidates (those come from whole-slide runs).
   */
  rememberRegionObjects(slideId: string, modelVersion: string, features: { feature: WireFeature; energy: number }[]): void {
    this.#db.transaction(() => {
      const ins = this.#db.prepare("INSERT OR IGNORE INTO objects (id, slide_id, model_version, energy, cx, cy, feature, source) VALUES (?, ?, ?, ?, ?, ?, ?, 'region')");
      for (const { feature, energy } of features) {
        const c = centroidOf(feature.geometry);
        ins.run(feature.id, slideId, modelVersion, energy, c[0], c[1], JSON.stringify(feature));
      }
    })();
  }

  /** Whether a whole-slide prediction of this model version is stored for the slide. */
  hasSlidePrediction(slideId: string, modelVersion: string): boolean {
    return this.#db.prepare('SELECT 1 FROM slide_predictions WHERE slide_id = ? AND model_version = ?').get(slideId, modelVersion) !== undefined;
  }

  /** Lowest mean energy first among unreviewed objects; marks them seen. */
  nextCandidates(slideId: string, modelVersion: string, limit: number): { objects: StoredObject[]; remaining: number } {
    return this.#db.transaction(() => {
      const rows = this.#db
        .prepare("SELECT * FROM objects WHERE slide_id = ? AND model_version = ? AND source = 'slide' AND reviewed = 0 ORDER BY energy ASC, id ASC LIMIT ?")
        .all(slideId, modelVersion, limit) as ObjectRow[];
      const mark = this.#db.prepare('UPDATE objects SET seen = 1 WHERE id = ?');
      for (const r of rows) mark.run(r.id);
      const total = (this.#db.prepare("SELECT COUNT(*) n FROM objects WHERE slide_id = ? AND model_version = ? AND source = 'slide' AND reviewed = 0").get(slideId, modelVersion) as { n: number }).n;
      return { objects: rows.map(toObject), remaining: total - rows.length };
    })();
  }

  listObjects(slideId: string, modelVersion: string): StoredObject[] {
    return (this.#db.prepare("SELECT * FROM objects WHERE slide_id = ? AND model_version = ? AND source = 'slide' ORDER BY energy ASC").all(slideId, modelVersion) as ObjectRow[]).map(toObject);
  }

  // --- corrections ---------------------------------------------------------------------------

  /**
   * Stores one submission atomically: every item in the submission history, the corrections it makes
   * newer (upserted by object id), every reviewed region, and marks the covered objects reviewed.
   * Which decision an object keeps (docs/protocol.md, "Revisions"): an item with a `revision` replaces
   * the stored correction only when its revision is higher, or equal with a greater submission id (so
   * the outcome does not depend on arrival order); otherwise it is acknowledged and reported `stale`.
   * An item without one replaces it as before (clients without revisions: the last submission wins),
   * the stored revision counting its changes. A `submissionId` the client made is an idempotency key:
   * a retry carrying the same content gets the first answer and writes nothing; other content under a
   * known id is refused. Returns after the commit (synchronous = FULL), which makes the ack trustworthy.
   */
  submitCorrections(slideId: string, requestId: string | null, reviewedRegions: PolygonGeometry[], items: CorrectionItem[], options: { submissionId?: string } = {}): SubmitResult {
    this.requireSlide(slideId);
    for (const it of items) {
      if ((it.action === 'edited' || it.action === 'added') && !it.geometry) {
        throw new AppError('E_GEOJSON_INVALID', `item ${it.id}: action "${it.action}" needs a geometry (the new outline in level-0 pixels)`);
      }
    }
    // Ids are compared as strings for tie-breaks: one case for every client.
    const submissionId = options.submissionId?.toLowerCase() ?? randomUUID();
    const payloadHash = createHash('sha256').update(JSON.stringify({ slideId, reviewedRegions, items })).digest('hex');
    const t = now();
    return this.#db.transaction((): SubmitResult => {
      const prior = this.#db.prepare('SELECT slide_id, payload_hash, ack FROM submissions WHERE id = ?').get(submissionId) as { slide_id: string; payload_hash: string | null; ack: string | null } | undefined;
      if (prior) {
        if (prior.payload_hash !== payloadHash || prior.ack === null) {
          throw new AppError('E_SUBMISSION_REUSED', `submission ${submissionId} was already stored with other content; make a new submissionId for new corrections (keep one only for retries of the same submission)`);
        }
        const ack = JSON.parse(prior.ack) as { accepted: string[]; stale: StaleItem[] };
        return { submissionId, accepted: ack.accepted, stale: ack.stale, duplicate: true };
      }
      this.#db.prepare('INSERT INTO submissions (id, slide_id, request_id, item_count, created_at, payload_hash) VALUES (?, ?, ?, ?, ?, ?)').run(submissionId, slideId, requestId, items.length, t, payloadHash);
      const current = this.#db.prepare('SELECT slide_id, submission_id, action, geometry, class, revision FROM corrections WHERE item_id = ?');
      const upsert = this.#db.prepare(`
        INSERT INTO corrections (item_id, slide_id, submission_id, action, geometry, class, revision, updated_at)
        VALUES (@id, @slide, @sub, @action, @geometry, @class, @revision, @t)
        ON CONFLICT(item_id) DO UPDATE SET
          submission_id = excluded.submission_id, action = excluded.action, geometry = excluded.geometry,
          class = excluded.class, revision = excluded.revision, updated_at = excluded.updated_at`);
      const history = this.#db.prepare('INSERT INTO submission_items (submission_id, position, item_id, action, geometry, class, revision, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
      const markReviewed = this.#db.prepare('UPDATE objects SET reviewed = 1 WHERE id = ? AND slide_id = ?');
      const stale: StaleItem[] = [];
      items.forEach((it, position) => {
        const geometry = it.geometry ? JSON.stringify(it.geometry) : null;
        const cls = it.class ?? null;
        const cur = current.get(it.id) as { slide_id: string; submission_id: string; action: string; geometry: string | null; class: string | null; revision: number } | undefined;
        if (cur && cur.slide_id !== slideId) throw new AppError('E_CORRECTION_CONFLICT', `item ${it.id} was already submitted for another slide; object ids are per slide`);
        const same = cur !== undefined && cur.action === it.action && cur.geometry === geometry && cur.class === cls;
        let outcome: SubmissionOutcome;
        let revision: number;
        if (it.revision === undefined) {
          outcome = 'applied';
          revision = cur ? cur.revision + (same ? 0 : 1) : 1;
        } else {
          revision = it.revision;
          if (!cur || it.revision > cur.revision || (it.revision === cur.revision && !same && submissionId > cur.submission_id)) outcome = 'applied';
          else outcome = it.revision === cur.revision && same ? 'unchanged' : 'stale';
        }
        if (outcome === 'applied') upsert.run({ id: it.id, slide: slideId, sub: submissionId, action: it.action, geometry, class: cls, revision, t });
        else if (outcome === 'stale' && cur) stale.push({ id: it.id, revision: cur.revision, submissionId: cur.submission_id });
        history.run(submissionId, position, it.id, it.action, geometry, cls, it.revision ?? null, outcome);
        markReviewed.run(it.id, slideId);
      });
      const insRegion = this.#db.prepare('INSERT INTO reviewed_regions (id, slide_id, submission_id, geometry, created_at) VALUES (?, ?, ?, ?, ?)');
      for (const g of reviewedRegions) insRegion.run(randomUUID(), slideId, submissionId, JSON.stringify(g), t);
      if (reviewedRegions.length > 0) {
        const open = this.#db.prepare('SELECT id, cx, cy FROM objects WHERE slide_id = ? AND reviewed = 0').all(slideId) as { id: string; cx: number; cy: number }[];
        for (const o of open) if (reviewedRegions.some((g) => containsPoint(g, [o.cx, o.cy]))) markReviewed.run(o.id, slideId);
      }
      const accepted = items.map((i) => i.id);
      this.#db.prepare('UPDATE submissions SET ack = ? WHERE id = ?').run(JSON.stringify({ accepted, stale }), submissionId);
      return { submissionId, accepted, stale, duplicate: false };
    })();
  }

  /** A slide's submissions, oldest first, each with every item as received and what it did. */
  listSubmissions(slideId: string): SubmissionRecord[] {
    const subs = this.#db.prepare('SELECT id, slide_id, request_id, created_at FROM submissions WHERE slide_id = ? ORDER BY created_at, rowid').all(slideId) as { id: string; slide_id: string; request_id: string | null; created_at: string }[];
    const itemsOf = this.#db.prepare('SELECT * FROM submission_items WHERE submission_id = ? ORDER BY position');
    return subs.map((r) => ({ id: r.id, slideId: r.slide_id, requestId: r.request_id, createdAt: r.created_at, items: (itemsOf.all(r.id) as SubmissionItemRow[]).map(toSubmissionItem) }));
  }

  listCorrections(slideId?: string): CorrectionRecord[] {
    const rows = slideId === undefined
      ? (this.#db.prepare('SELECT * FROM corrections ORDER BY updated_at, item_id').all() as CorrectionRow[])
      : (this.#db.prepare('SELECT * FROM corrections WHERE slide_id = ? ORDER BY updated_at, item_id').all(slideId) as CorrectionRow[]);
    return rows.map(toCorrection);
  }

  listReviewedRegions(slideId?: string): ReviewedRegionRecord[] {
    const rows = slideId === undefined
      ? (this.#db.prepare('SELECT * FROM reviewed_regions ORDER BY created_at, id').all() as RegionRow[])
      : (this.#db.prepare('SELECT * FROM reviewed_regions WHERE slide_id = ? ORDER BY created_at, id').all(slideId) as RegionRow[]);
    return rows.map(toRegion);
  }

  /** The stored prediction an item refers to (any model version), if the server issued it. */
  findObject(id: string): StoredObject | undefined {
    const r = this.#db.prepare('SELECT * FROM objects WHERE id = ?').get(id) as ObjectRow | undefined;
    return r ? toObject(r) : undefined;
  }

  // --- jobs ------------------------------------------------------------------------------------

  createJob(kind: string, priority: number, params: Record<string, unknown>): JobRecord {
    const id = shortId();
    this.#db.prepare('INSERT INTO jobs (id, kind, state, priority, params, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, kind, 'queued', priority, JSON.stringify(params), now());
    return this.requireJob(id);
  }

  getJob(id: string): JobRecord | undefined {
    const r = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return r ? toJob(r) : undefined;
  }

  requireJob(id: string): JobRecord {
    const j = this.getJob(id);
    if (!j) throw new AppError('E_JOB_NOT_FOUND', `no job with id "${id}" (GET /api/jobs lists them)`);
    return j;
  }

  listJobs(limit = 200): JobRecord[] {
    return (this.#db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?').all(limit) as JobRow[]).map(toJob);
  }

  setJobState(id: string, state: JobState, extra: { result?: Record<string, unknown>; error?: { code: string; message: string } } = {}): JobRecord {
    const t = now();
    this.#db
      .prepare(`UPDATE jobs SET state = ?, result = COALESCE(?, result), error = COALESCE(?, error),
        started_at = CASE WHEN ? = 'running' THEN ? ELSE started_at END,
        finished_at = CASE WHEN ? IN ('done', 'failed', 'cancelled') THEN ? ELSE finished_at END WHERE id = ?`)
      .run(state, extra.result ? JSON.stringify(extra.result) : null, extra.error ? JSON.stringify(extra.error) : null, state, t, state, t, id);
    return this.requireJob(id);
  }

  setJobProgress(id: string, progress: Record<string, unknown>): void {
    this.#db.prepare('UPDATE jobs SET progress = ? WHERE id = ?').run(JSON.stringify(progress), id);
  }

  /** At start-up: jobs that were queued or running when the process died did not finish. */
  failInterruptedJobs(): number {
    const err = JSON.stringify({ code: 'E_JOB_INTERRUPTED', message: 'the server stopped while this job was queued or running; start it again' });
    return this.#db.prepare("UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE state IN ('queued', 'running')").run(err, now()).changes;
  }
}
