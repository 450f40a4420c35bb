// Training curves as a PNG: an SVG with three panels (training loss per step and per epoch, validation
// Dice per epoch, learning rate per step) rendered by sharp. Written next to the JSONL log.
import sharp from 'sharp';

export interface CurvePoint {
  x: number;
  y: number;
}

export interface CurveSet {
  stepLoss: CurvePoint[];
  epochLoss: CurvePoint[];
  valDice: CurvePoint[];
  lr: CurvePoint[];
  title: string;
}

function panel(title: string, series: { points: CurvePoint[]; color: string }[], x0: number, y0: number, w: number, h: number): string {
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y) && Number.isFinite(p.x));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const minX = Math.min(0, ...xs);
  const maxX = Math.max(minX + 1, ...xs);
  const minY = Math.min(...ys, 0);
  const maxY = Math.max(...ys, minY + 1e-9);
  const px = (x: number): number => x0 + 40 + ((x - minX) / (maxX - minX)) * (w - 50);
  const py = (y: number): number => y0 + h - 20 - ((y - minY) / (maxY - minY)) * (h - 40);
  const lines = series
    .filter((s) => s.points.length > 0)
    .map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${s.points.filter((p) => Number.isFinite(p.y)).map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`)
    .join('');
  const fmt = (v: number): string => (Math.abs(v) < 1e-2 && v !== 0 ? v.toExponential(1) : v.toFixed(3));
  return `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="white" stroke="#ccc"/>
<text x="${x0 + 40}" y="${y0 + 14}" font-family="sans-serif" font-size="12">${title}</text>
<text x="${x0 + 2}" y="${y0 + 28}" font-family="sans-serif" font-size="9">${fmt(maxY)}</text>
<text x="${x0 + 2}" y="${y0 + h - 20}" font-family="sans-serif" font-size="9">${fmt(minY)}</text>${lines}`;
}

export function curvesSvg(c: CurveSet): string {
  const w = 900;
  const h = 220;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${3 * h + 30}">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="18" font-family="sans-serif" font-size="14">${c.title.replace(/[<&>]/g, '')}</text>
${panel('training loss (grey: per step, blue: epoch mean) vs iteration', [{ points: c.stepLoss, color: '#bbb' }, { points: c.epochLoss, color: '#1f77b4' }], 0, 30, w, h)}
${panel('validation Dice vs iteration', [{ points: c.valDice, color: '#2ca02c' }], 0, 30 + h, w, h)}
${panel('learning rate vs iteration', [{ points: c.lr, color: '#d62728' }], 0, 30 + 2 * h, w, h)}
</svg>`;
}

export async function writeCurvesPng(path: string, c: CurveSet): Promise<void> {
  await sharp(Buffer.from(curvesSvg(c))).png().toFile(path);
}
