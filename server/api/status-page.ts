// The small status page at `/` for whoever is not in QuPath: models (active, parent, metrics), jobs
// with their progress, and the loss/Dice curves of recent training runs. Server-rendered HTML, no
// scripts; it refreshes itself every 5 s.
import { LOUPE_VERSION } from '../lib/version.ts';
import type { Services } from './services.ts';

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : esc(v ?? '');
}

function curveSvg(points: { step: number; loss: number | null; dice: number | null }[]): string {
  if (points.length < 2) return '';
  const w = 360;
  const h = 120;
  const maxStep = Math.max(...points.map((p) => p.step), 1);
  const losses = points.map((p) => p.loss).filter((x): x is number => x !== null);
  const maxLoss = Math.max(...losses, 1e-9);
  const line = (get: (p: (typeof points)[number]) => number | null, scale: number): string =>
    points
      .filter((p) => get(p) !== null)
      .map((p) => `${((p.step / maxStep) * w).toFixed(1)},${(h - ((get(p) ?? 0) / scale) * h).toFixed(1)}`)
      .join(' ');
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" style="border:1px solid #ccc"><polyline fill="none" stroke="#c33" points="${line((p) => p.loss, maxLoss)}"/><polyline fill="none" stroke="#36c" points="${line((p) => p.dice, 1)}"/></svg><br><small><span style="color:#c33">loss</span> · <span style="color:#36c">Dice</span></small>`;
}

export function renderStatusPage(services: Services): string {
  const models = services.modelList();
  const jobs = services.store.listJobs(30);
  const slides = services.store.listSlides();
  const notices = services.notices();
  const q = services.queue.stats();
  const modelRows = models.versions
    .map((m) => `<tr><td>${esc(m.version)}${m.active ? ' <b>(active)</b>' : ''}</td><td>${esc(m.parent ?? '—')}</td><td>${m.promoted ? 'yes' : 'no'}</td><td>${esc(Object.entries(m.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(', '))}</td><td>${esc(m.createdAt)}</td></tr>`)
    .join('');
  const jobRows = jobs
    .map((j) => {
      const p = j.progress;
      const step = typeof p.step === 'number' ? p.step : typeof p.done === 'number' ? p.done : null;
      const total = typeof p.total === 'number' ? p.total : null;
      const pct = step !== null && total ? `${Math.round((100 * step) / total)} %` : '';
      const curve = services.trainCurves.get(j.id);
      return `<tr><td>${esc(j.id)}</td><td>${esc(j.kind)}</td><td>${esc(j.state)}</td><td>${pct}${p.phase ? ` ${esc(p.phase)}` : ''}</td><td>${esc(j.error ? `${j.error.code}: ${j.error.message}` : '')}</td><td>${esc(j.createdAt)}</td></tr>${curve ? `<tr><td colspan="6">${curveSvg(curve)}</td></tr>` : ''}`;
    })
    .join('');
  const slideRows = slides.map((s) => `<tr><td>${esc(s.id)}</td><td>${esc(s.name)}</td><td>${fmt(s.width)}×${fmt(s.height)}</td><td>${fmt(s.mpp)}</td><td>${esc(s.status)}</td></tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>loupe</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}.notice{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a800}</style></head><body>
<h1>loupe ${esc(LOUPE_VERSION)}</h1>
${notices.map((n) => `<p class="notice">${esc(n)}</p>`).join('')}
<p>Active model: <b>${esc(models.active ?? 'none')}</b> · queue: ${q.running.viewer + q.running.training + q.running.batch} running, ${q.queued.viewer + q.queued.training + q.queued.batch} queued · WebSocket: <code>/ws</code> (protocol 1)</p>
<h2>Models</h2><table><tr><th>version</th><th>parent</th><th>promoted</th><th>metrics</th><th>created</th></tr>${modelRows || '<tr><td colspan="5">none</td></tr>'}</table>
<h2>Jobs</h2><table><tr><th>id</th><th>kind</th><th>state</th><th>progress</th><th>error</th><th>created</th></tr>${jobRows || '<tr><td colspan="6">none</td></tr>'}</table>
<h2>Slides</h2><table><tr><th>id</th><th>name</th><th>size (px)</th><th>µm/px</th><th>status</th></tr>${slideRows || '<tr><td colspan="5">none</td></tr>'}</table>
</body></html>`;
}
