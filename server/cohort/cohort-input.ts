// Cohort inputs → the list of slides to score: a folder (every entry in it is tried, none silently
// skipped), a CSV (`slide_path[,slide_id]`, relative paths from the CSV's folder) or a QuPath project
// (`.qpproj`: each image's server-builder URI mapped to a file path, with QuPath's own rule for a moved
// project). An entry that the input itself shows cannot be read (a URI that is not a file, a missing
// file) keeps its place with a `problem`, so it becomes a failed row with its code, never a gap.
// First step of the cohort flow; score-slide.ts takes the entries from here.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../contracts/errors.ts';
import type { CohortEntry } from './records.ts';

export type CohortInputKind = 'folder' | 'csv' | 'qpproj';

export interface CohortInput {
  kind: CohortInputKind;
  /** Absolute path of the folder, CSV or project file. */
  source: string;
  entries: CohortEntry[];
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A folder-safe slide id from a file name: extension dropped, anything unusual replaced by "_". */
export function slideIdFromName(name: string): string {
  const stem = name.endsWith('.ome.tiff') || name.endsWith('.ome.tif') ? name.replace(/\.ome\.tiff?$/, '') : basename(name, extname(name));
  const id = stem.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '').slice(0, 128);
  return id || 'slide';
}

/** Makes ids unique in list order (a second "a" becomes "a-2"); the first keeps its plain name. */
function uniquify(entries: CohortEntry[]): CohortEntry[] {
  const seen = new Set<string>();
  return entries.map((e) => {
    let id = e.slideId;
    for (let n = 2; seen.has(id.toLowerCase()); n++) id = `${e.slideId}-${n}`;
    seen.add(id.toLowerCase());
    return { ...e, slideId: id };
  });
}

async function missing(path: string): Promise<CohortEntry['problem'] | undefined> {
  try {
    await stat(path);
    return undefined;
  } catch {
    return { code: 'E_SLIDE_NOT_FOUND', message: `${path} does not exist` };
  }
}

async function fromFolder(dir: string): Promise<CohortEntry[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    // Hidden files (.DS_Store, editor swap files) are not slides anyone meant to list.
    .filter((d) => !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return names.map((name) => ({ slideId: slideIdFromName(name), path: join(dir, name) }));
}

/** RFC 4180 fields of one line (quotes, doubled quotes); the cohort CSV never has multi-line fields. */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

async function fromCsv(file: string): Promise<CohortEntry[]> {
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  const lines = text.split(/\r?\n/).map((l, i) => ({ l, n: i + 1 })).filter(({ l }) => l.trim() !== '');
  const header = lines[0];
  if (!header) throw new AppError('E_COHORT_INPUT_INVALID', `${file} is empty; it needs a header "slide_path[,slide_id]" and one row per slide`);
  const cols = splitCsvLine(header.l).map((c) => c.toLowerCase());
  const pathCol = cols.indexOf('slide_path');
  const idCol = cols.indexOf('slide_id');
  if (pathCol < 0) throw new AppError('E_COHORT_INPUT_INVALID', `${file}: the header must name a slide_path column (found: ${cols.join(', ')})`);
  const entries: CohortEntry[] = [];
  const given = new Set<string>();
  for (const { l, n } of lines.slice(1)) {
    const f = splitCsvLine(l);
    const p = f[pathCol] ?? '';
    if (!p) throw new AppError('E_COHORT_INPUT_INVALID', `${file} line ${n}: slide_path is empty`);
    const path = isAbsolute(p) ? p : resolve(dirname(file), p);
    const id = idCol >= 0 ? (f[idCol] ?? '') : '';
    if (id) {
      if (!SAFE_ID.test(id)) throw new AppError('E_COHORT_INPUT_INVALID', `${file} line ${n}: slide_id "${id}" must be letters, digits, ".", "_" or "-" (it names a folder)`);
      if (given.has(id.toLowerCase())) throw new AppError('E_COHORT_INPUT_INVALID', `${file} line ${n}: slide_id "${id}" appears twice`);
      given.add(id.toLowerCase());
    }
    const problem = await missing(path);
    entries.push({ slideId: id || slideIdFromName(basename(p)), path, ...(problem ? { problem } : {}) });
  }
  return entries;
}

/** The first `uri` of a QuPath server builder, looking through wrappers (rotated, pyramidize, channels, sparse). */
function builderUri(b: unknown): string | undefined {
  if (typeof b !== 'object' || b === null) return undefined;
  const o = b as Record<string, unknown>;
  if (typeof o.uri === 'string') return o.uri;
  const inner = builderUri(o.builder);
  if (inner) return inner;
  for (const key of ['builders', 'regions']) {
    const list = o[key];
    if (Array.isArray(list)) {
      for (const item of list) {
        const u = builderUri(item);
        if (u) return u;
      }
    }
  }
  return undefined;
}

/** QuPath writes `file:/C:/x` or `file:/home/x`; Node wants `file:///…`. */
function fileUriToPath(uri: string): string | undefined {
  if (!/^file:/i.test(uri)) return undefined;
  const normal = uri.replace(/^file:\/*/i, 'file:///');
  try {
    return fileURLToPath(normal);
  } catch {
    return undefined;
  }
}

async function fromQpproj(file: string): Promise<CohortEntry[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new AppError('E_COHORT_INPUT_INVALID', `${file} is not a readable QuPath project (JSON expected)`, { cause: err });
  }
  const images = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).images : undefined;
  if (!Array.isArray(images)) throw new AppError('E_COHORT_INPUT_INVALID', `${file} has no "images" list; is it a QuPath project.qpproj?`);
  const projectUri = (raw as Record<string, unknown>).uri;
  const oldProjectDir = typeof projectUri === 'string' ? fileUriToPath(projectUri) : undefined;
  const entries: CohortEntry[] = [];
  for (const [i, img] of images.entries()) {
    const o = typeof img === 'object' && img !== null ? (img as Record<string, unknown>) : {};
    const name = typeof o.imageName === 'string' && o.imageName ? o.imageName : `image-${i + 1}`;
    const uri = builderUri(o.serverBuilder);
    if (!uri) {
      entries.push({ slideId: slideIdFromName(name), path: `${file}#images[${i}]`, problem: { code: 'E_COHORT_URI_MISSING', message: `project image "${name}" has no server URI` } });
      continue;
    }
    const path = fileUriToPath(uri);
    if (!path) {
      entries.push({ slideId: slideIdFromName(name), path: uri, problem: { code: 'E_COHORT_URI_UNSUPPORTED', message: `project image "${name}" is served from ${uri}; only file: URIs can be scored` } });
      continue;
    }
    let found = path;
    let problem = await missing(path);
    // QuPath's rule for a moved project: the image kept its place relative to the project file.
    if (problem && oldProjectDir) {
      const moved = resolve(dirname(file), relative(dirname(oldProjectDir), path));
      if (!(await missing(moved))) {
        found = moved;
        problem = undefined;
      }
    }
    entries.push({ slideId: slideIdFromName(name), path: found, ...(problem ? { problem: { code: problem.code, message: `project image "${name}": ${problem.message}` } } : {}) });
  }
  return entries;
}

/** Reads a cohort input (folder, .csv or .qpproj). Errors: E_COHORT_INPUT_NOT_FOUND, E_COHORT_INPUT_INVALID. */
export async function readCohortInput(input: string): Promise<CohortInput> {
  const source = resolve(input);
  let st;
  try {
    st = await stat(source);
  } catch (err) {
    throw new AppError('E_COHORT_INPUT_NOT_FOUND', `--cohort ${input} does not exist (give a folder of slides, a .csv or a QuPath .qpproj)`, { cause: err });
  }
  // An OME-Zarr store is a folder too, but it is one slide, not a cohort.
  if (st.isDirectory() && !source.endsWith('.zarr')) return { kind: 'folder', source, entries: uniquify(await fromFolder(source)) };
  const ext = extname(source).toLowerCase();
  if (ext === '.csv') return { kind: 'csv', source, entries: uniquify(await fromCsv(source)) };
  if (ext === '.qpproj') return { kind: 'qpproj', source, entries: uniquify(await fromQpproj(source)) };
  throw new AppError('E_COHORT_INPUT_INVALID', `--cohort ${input} must be a folder, a .csv (slide_path[,slide_id]) or a QuPath .qpproj`);
}
