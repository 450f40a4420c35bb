// `OUT/report.html`: one self-contained page (inline CSS, inline SVG charts, thumbnails as data URIs,
// no script, no network) that opens from disk: cohort counts, the energy histogram of all objects,
// energy vs object area, and the slides ranked by how much review they need (low-energy objects
// first), each with its overlay thumbnail. Built from the same rows as summary.csv.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../contracts/errors.ts';
import type { CohortRow } from './summary-table.ts';
import { reviewCount } from './summary-table.ts';
import { SLIDE_FILES } from './score-slide.ts';

export interface ReportOptions {
  title: string;
  threshold: number | null;
  /** Thumbnail width in pixels. */
  thumbWidth?: number;
  /** Scatter points at most (an even subsample beyond it, so the page stays small). */
  maxPoints?: number;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : Number(v.toPrecision(digits)).toLocaleString('en-US'));

export interface Histogram {
  edges: number[];
  counts: number[];
}

export function histogram(values: readonly number[], bins: number): Histogram {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { edges: [], counts: [] };
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (hi === lo) {
    lo -= 0.5;
    hi += 0.5;
  }
  const counts = new Array<number>(bins).fill(0);
  for (const x of v) counts[Math.min(bins - 1, Math.floor(((x - lo) / (hi - lo)) * bins))]++;
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins), counts };
}

function histogramSvg(h: Histogram, threshold: number | null): string {
  const W = 560;
  const H = 220;
  const pad = 36;
  if (h.counts.length === 0) return '<p class="muted">No objects.</p>';
  const max = Math.max(...h.counts);
  const lo = h.edges[0] as number;
  const hi = h.edges.at(-1) as number;
  const bw = (W - 2 * pad) / h.counts.length;
  const bars = h.counts
    .map((c, i) => {
      const bh = max ? ((H - 2 * pad) * c) / max : 0;
      const low = threshold !== null && (h.edges[i + 1] as number) <= threshold;
      return `<rect x="${(pad + i * bw).toFixed(1)}" y="${(H - pad - bh).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${low ? '#d9534f' : '#5b8def'}"><title>${fmt(h.edges[i])} – ${fmt(h.edges[i + 1])}: ${c}</title></rect>`;
    })
    .join('');
  const tx = threshold === null ? '' : `<line x1="${pad + ((threshold - lo) / (hi - lo)) * (W - 2 * pad)}" x2="${pad + ((threshold - lo) / (hi - lo)) * (W - 2 * pad)}" y1="${pad / 2}" y2="${H - pad}" stroke="#333" stroke-dasharray="4 3"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="energy histogram">${bars}${tx}
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#333"/>
<text x="${pad}" y="${H - 12}" font-size="11">${fmt(lo)}</text><text x="${W - pad}" y="${H - 12}" font-size="11" text-anchor="end">${fmt(hi)}</text>
<text x="${W / 2}" y="${H - 4}" font-size="11" text-anchor="middle">object mean energy (−E; low = uncertain)</text>
<text x="4" y="${pad / 2}" font-size="11">max ${max}</text></svg>`;
}

function scatterSvg(points: { x: number; y: number; low: boolean }[], xLabel: string): string {
  const W = 560;
  const H = 260;
  const pad = 40;
  if (points.length === 0) return '<p class="muted">No objects.</p>';
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number): number => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (y: number): number => H - pad - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const dots = points.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2.2" fill="${p.low ? '#d9534f' : '#5b8def'}" fill-opacity="0.6"/>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="energy vs area">${dots}
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#333"/><line x1="${pad}" y1="${pad / 2}" x2="${pad}" y2="${H - pad}" stroke="#333"/>
<text x="${pad}" y="${H - pad + 14}" font-size="11">${fmt(x0)}</text><text x="${W - pad}" y="${H - pad + 14}" font-size="11" text-anchor="end">${fmt(x1)}</text>
<text x="${W / 2}" y="${H - 6}" font-size="11" text-anchor="middle">${esc(xLabel)}</text>
<text x="${pad - 4}" y="${sy(y0)}" font-size="11" text-anchor="end">${fmt(y0)}</text><text x="${pad - 4}" y="${sy(y1) + 10}" font-size="11" text-anchor="end">${fmt(y1)}</text>
<text x="12" y="${H / 2}" font-size="11" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">mean energy</text></svg>`;
}

async function thumbnail(outDir: string, slideId: string, width: number): Promise<string | null> {
  try {
    const { default: sharp } = await import('sharp');
    const png = await readFile(join(outDir, slideId, SLIDE_FILES.overlay));
    const small = await sharp(png).resize({ width, withoutEnlargement: true }).jpeg({ quality: 70 }).toBuffer();
    return `data:image/jpeg;base64,${small.toString('base64')}`;
  } catch {
    return null;
  }
}

/** Rows ranked by review need: most low-energy objects first, then lowest median energy; failures last. */
export function rankForReview(rows: readonly CohortRow[], threshold: number | null): CohortRow[] {
  const key = (r: CohortRow): [number, number] => (r.record?.status === 'ok' ? [-(reviewCount(r.record, threshold) ?? 0), r.record.energy.median ?? Infinity] : [Infinity, Infinity]);
  return [...rows].sort((a, b) => {
    const [a0, a1] = key(a);
    const [b0, b1] = key(b);
    return a0 - b0 || a1 - b1 || (a.entry.slideId < b.entry.slideId ? -1 : 1);
  });
}

export async function renderReport(outDir: string, rows: readonly CohortRow[], options: ReportOptions): Promise<string> {
  const t = options.threshold;
  const thumbW = options.thumbWidth ?? 220;
  const ok = rows.filter((r) => r.record?.status === 'ok');
  const failed = rows.filter((r) => r.record?.status === 'failed' || (!r.record && r.missingReason));
  const pending = rows.filter((r) => !r.record && !r.missingReason);
  const energies: number[] = [];
  const pts: { x: number; y: number; low: boolean }[] = [];
  const useUm2 = ok.length > 0 && ok.every((r) => r.record?.status === 'ok' && r.record.mpp !== null);
  for (const r of ok) {
    if (r.record?.status !== 'ok') continue;
    const o = r.record.objects;
    o.meanEnergy.forEach((e, i) => {
      energies.push(e);
      const area = useUm2 ? o.areaUm2[i] : o.areaPx[i];
      if (Number.isFinite(e) && typeof area === 'number') pts.push({ x: area, y: e, low: t !== null && e < t });
    });
  }
  const maxPoints = options.maxPoints ?? 20_000;
  const step = Math.max(1, Math.ceil(pts.length / maxPoints));
  const shown = pts.filter((_, i) => i % step === 0);
  const totalObjects = ok.reduce((a, r) => a + (r.record?.status === 'ok' ? r.record.objectCount : 0), 0);
  const totalReview = ok.reduce((a, r) => a + (reviewCount(r.record, t) ?? 0), 0);

  const ranked = rankForReview(rows, t);
  const cards: string[] = [];
  for (const [i, r] of ranked.entries()) {
    const rec = r.record;
    const img = rec?.status === 'ok' ? await thumbnail(outDir, r.entry.slideId, thumbW) : null;
    const href = `${encodeURIComponent(r.entry.slideId)}/${SLIDE_FILES.overlay}`;
    let body: string;
    if (rec?.status === 'ok') {
      body = `<table><tr><th>objects</th><td>${rec.objectCount}</td></tr><tr><th>to review</th><td class="rev">${reviewCount(rec, t) ?? '–'}</td></tr>
<tr><th>density /mm²</th><td>${fmt(rec.densityPerMm2)}</td></tr><tr><th>tissue mm²</th><td>${fmt(rec.tissueAreaMm2)}</td></tr>
<tr><th>mean area ${rec.mpp === null ? 'px²' : 'µm²'}</th><td>${fmt(rec.mpp === null ? rec.objectAreaPxMean : rec.objectAreaUm2Mean)}</td></tr>
<tr><th>energy median</th><td>${fmt(rec.energy.median)}</td></tr><tr><th>size</th><td>${rec.width}×${rec.height}${rec.mpp === null ? ', no MPP' : `, ${fmt(rec.mpp)} µm/px`}</td></tr>
<tr><th>time</th><td>${fmt(rec.runMs / 1000)} s</td></tr></table>`;
    } else {
      const err = rec?.status === 'failed' ? rec.error : r.missingReason;
      body = err ? `<p class="err"><b>${esc(err.code)}</b> ${esc(err.message)}</p>` : '<p class="muted">not scored yet</p>';
    }
    cards.push(`<div class="card" id="${esc(r.entry.slideId)}"><h3>${i + 1}. ${esc(r.entry.slideId)}</h3>
${img ? `<a href="${href}"><img src="${img}" width="${thumbW}" alt="overlay of ${esc(r.entry.slideId)}"></a>` : ''}${body}
<p class="path">${esc(r.entry.path)}</p></div>`);
  }
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(options.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.stats{display:flex;gap:24px;flex-wrap:wrap}.stats div{background:#f3f5f8;padding:8px 14px;border-radius:6px}.stats b{font-size:18px;display:block}
.charts{display:flex;gap:24px;flex-wrap:wrap}.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px;width:${thumbW + 20}px}.card h3{font-size:14px;margin:0 0 6px;word-break:break-all}
.card table{font-size:12px;border-collapse:collapse;margin-top:6px}.card th{text-align:left;font-weight:normal;color:#666;padding-right:8px}
.rev{font-weight:bold;color:#b52b27}.err{color:#b52b27;font-size:12px}.muted{color:#888}.path{color:#888;font-size:11px;word-break:break-all}
</style></head><body>
<h1>${esc(options.title)}</h1>
<div class="stats"><div><b>${rows.length}</b>slides</div><div><b>${ok.length}</b>scored</div><div><b>${failed.length}</b>failed</div>${pending.length ? `<div><b>${pending.length}</b>pending</div>` : ''}
<div><b>${totalObjects}</b>objects</div><div><b>${totalReview}</b>to review (energy &lt; ${fmt(t)})</div></div>
<h2>Energy</h2><div class="charts"><figure>${histogramSvg(histogram(energies, 30), t)}<figcaption>Object mean energy, all slides (red: below the review threshold)</figcaption></figure>
<figure>${scatterSvg(shown, useUm2 ? 'object area (µm²)' : 'object area (level-0 px²)')}<figcaption>Energy vs object area${step > 1 ? ` (every ${step}th object)` : ''}</figcaption></figure></div>
<h2>Slides by review need</h2><div class="grid">${cards.join('\n')}</div>
</body></html>
`;
  const { rename, rm, writeFile } = await import('node:fs/promises');
  const path = join(outDir, 'report.html');
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, html);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AppError('E_OUTPUT_WRITE', `cannot write ${path}`, { cause: err });
  }
  return path;
}
