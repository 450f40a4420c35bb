// Small SVG charts for the evaluation reports (issue 10): line charts (F1 per review round, F1 over IoU
// thresholds, ROC curves) and scatter plots (mean energy vs IoU, as the seed's Figure 10), rendered to
// PNG by sharp (librsvg) or embedded as-is in the HTML report. Pure string building apart from
// `writePng`; no chart library, because four plot types do not justify one.
import { writeFile, rename } from 'node:fs/promises';

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  color: string;
  points: Point[];
  /** Draw markers only (scatter) instead of a line with markers. */
  scatter?: boolean;
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed axis ranges (default: the data's, with 0 included for y when close). */
  xRange?: [number, number];
  yRange?: [number, number];
  width?: number;
  height?: number;
}

export const PALETTE = ['#c2185b', '#1976d2', '#757575', '#388e3c', '#f57c00', '#7b1fa2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

/** An SVG line/scatter chart with axes, ticks and a legend. */
export function chartSvg(c: ChartSpec): string {
  const W = c.width ?? 640;
  const H = c.height ?? 400;
  const m = { l: 60, r: 150, t: 34, b: 46 };
  const pts = c.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  let [x0, x1] = c.xRange ?? [Math.min(...xs, 0), Math.max(...xs, 1)];
  let [y0, y1] = c.yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const px = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * pw;
  const py = (y: number): number => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="20" font-family="sans-serif" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  ];
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<line x1="${px(t).toFixed(1)}" x2="${px(t).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${px(t).toFixed(1)}" y="${m.t + ph + 14}" font-family="sans-serif" font-size="10" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 4}" y="${(py(t) + 3).toFixed(1)}" font-family="sans-serif" font-size="10" text-anchor="end">${fmt(t)}</text>`);
  }
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 10}" font-family="sans-serif" font-size="12" text-anchor="middle">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" font-family="sans-serif" font-size="12" text-anchor="middle">${esc(c.yLabel)}</text>`);
  c.series.forEach((s, i) => {
    const ok = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (!s.scatter && ok.length > 1) {
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${ok.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of ok) parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="${s.scatter ? 3 : 2.5}" fill="${s.color}"${s.scatter ? ' fill-opacity="0.7"' : ''}/>`);
    const ly = m.t + 10 + i * 18;
    parts.push(`<rect x="${m.l + pw + 10}" y="${ly - 8}" width="12" height="10" fill="${s.color}"/>`);
    parts.push(`<text x="${m.l + pw + 26}" y="${ly}" font-family="sans-serif" font-size="11">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Renders an SVG to a PNG file (written to a temporary name, then renamed). */
export async function writePng(path: string, svg: string): Promise<void> {
  const sharp = (await import('sharp')).default;
  const tmp = `${path}.partial-${process.pid}`;
  await writeFile(tmp, await sharp(Buffer.from(svg)).png().toBuffer());
  await rename(tmp, path);
}
