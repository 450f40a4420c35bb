// k-fold cross-validation report (issue 10, `loupe eval`): which fold's model scores which slide, and
// the report files. Every slide is scored by the model of the fold that held it out — never by one
// model for all folds (the original HuBMAP CV notebook evaluated every fold with the last model, which
// mixes training slides into the "validation" numbers). The fold of a slide comes from the model
// packages' provenance (`parameters.valSlides`, written by `loupe train --folds k`) or is given
// explicitly. Outputs: report.json (everything), slides.csv (one row per slide), folds.csv (one row
// per fold and IoU threshold), report.html (tables and plots). Written to temporary names first.
import { slideNameMatches } from '../lib/slide-names.ts';
import { basename, join } from 'node:path';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { AppError } from '../contracts/errors.ts';
import { chartSvg, PALETTE, writePng, type Series } from './charts.ts';
import { poolSlides, selectivity, type Selectivity, type SlideScore } from './score-objects.ts';

export interface FoldModel {
  dir: string;
  version: string;
  /** Slide names (basenames) this model did not train on, from its provenance; null when unknown. */
  valSlides: string[] | null;
}

/**
 * The fold (0-based index into `models`) of each slide. `explicit` (1-based, one per slide) wins;
 * otherwise each slide must appear in exactly one model's `valSlides` (matched by basename, or by the
 * longer path tail recorded when basenames clashed).
 */
export function assignFolds(slides: readonly string[], models: readonly FoldModel[], explicit?: readonly number[]): number[] {
  if (models.length === 0) throw new AppError('E_ARG_INVALID', 'give at least one model (--models DIR…)');
  if (explicit) {
    if (explicit.length !== slides.length) throw new AppError('E_ARG_INVALID', `--fold-of needs one fold number per slide: got ${explicit.length} for ${slides.length} slides`);
    return explicit.map((f, i) => {
      if (!Number.isInteger(f) || f < 1 || f > models.length) throw new AppError('E_ARG_INVALID', `--fold-of: slide ${basename(slides[i] ?? '')} has fold ${f}; folds are 1…${models.length} (one per --models entry)`);
      return f - 1;
    });
  }
  return slides.map((s) => {
    const name = basename(s);
    // Recorded names are the basename, or a longer path tail when basenames clashed (lib/slide-names.ts).
    const hits = models.map((m, i) => (m.valSlides?.some((v) => slideNameMatches(s, v)) ? i : -1)).filter((i) => i >= 0);
    if (hits.length === 1) return hits[0] as number;
    if (hits.length > 1) throw new AppError('E_ARG_INVALID', `slide ${name} is held out by several models (${hits.map((i) => models[i]?.version).join(', ')}); pass --fold-of`);
    const unknown = models.filter((m) => m.valSlides === null).map((m) => m.dir);
    throw new AppError('E_ARG_INVALID', unknown.length > 0
      ? `cannot tell which fold holds out ${name}: ${unknown.join(', ')} record no validation slides; pass --fold-of (one fold number per slide)`
      : `slide ${name} is in no model's validation set (a model would be scored on its own training data); pass --fold-of to override`);
  });
}

export interface SlideReport {
  slide: string;
  annotations: string;
  fold: number;
  model: string;
  seconds: number;
  score: SlideScore;
}

export interface FoldReport {
  fold: number;
  model: string;
  slides: string[];
  pooled: ReturnType<typeof poolSlides>;
  selectivity: Selectivity;
}

export interface CrossValidationReport {
  format: 'loupe-eval';
  formatVersion: 1;
  createdAt: string;
  iouThresholds: number[];
  folds: FoldReport[];
  overall: ReturnType<typeof poolSlides> & { selectivity: Selectivity };
  slides: SlideReport[];
}

export function buildReport(slides: readonly SlideReport[], models: readonly FoldModel[]): CrossValidationReport {
  const folds = models.map((m, f): FoldReport => {
    const mine = slides.filter((s) => s.fold === f + 1);
    return { fold: f + 1, model: m.version, slides: mine.map((s) => s.slide), pooled: poolSlides(mine.map((s) => s.score)), selectivity: selectivity(mine.flatMap((s) => s.score.objects)) };
  }).filter((f) => f.slides.length > 0);
  const all = slides.map((s) => s.score);
  return {
    format: 'loupe-eval',
    formatVersion: 1,
    createdAt: new Date().toISOString(),
    iouThresholds: (all[0]?.thresholds ?? []).map((t) => t.iou),
    folds,
    overall: { ...poolSlides(all), selectivity: selectivity(all.flatMap((s) => s.objects)) },
    slides: [...slides],
  };
}

const csvCell = (v: string | number | null): string => {
  if (v === null) return '';
  const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(6)) : v;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
const csv = (rows: (string | number | null)[][]): string => `${rows.map((r) => r.map(csvCell).join(',')).join('\n')}\n`;

export function slidesCsv(r: CrossValidationReport): string {
  return csv([
    ['slide', 'fold', 'model', 'truth', 'predicted', 'tp', 'fp', 'fn', 'precision', 'recall', 'f1', 'dice', 'seconds'],
    ...r.slides.map((s) => [s.slide, s.fold, s.model, s.score.truth, s.score.predicted, s.score.tp, s.score.fp, s.score.fn, s.score.precision, s.score.recall, s.score.f1, s.score.dice, Math.round(s.seconds * 10) / 10]),
  ]);
}

export function foldsCsv(r: CrossValidationReport): string {
  const rows: (string | number | null)[][] = [['fold', 'model', 'iou', 'tp', 'fp', 'fn', 'precision', 'recall', 'f1', 'meanSlideDice']];
  for (const f of [...r.folds.map((f) => ({ fold: String(f.fold), model: f.model, p: f.pooled })), { fold: 'all', model: '', p: r.overall }]) {
    for (const t of f.p.thresholds) rows.push([f.fold, f.model, t.iou, t.tp, t.fp, t.fn, t.precision, t.recall, t.f1, f.p.dice]);
  }
  return csv(rows);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function thresholdChart(r: CrossValidationReport): string {
  const series: Series[] = r.folds.map((f, i) => ({ name: `fold ${f.fold}`, color: PALETTE[(i + 1) % PALETTE.length] ?? '#000', points: f.pooled.thresholds.map((t) => ({ x: t.iou, y: t.f1 })) }));
  series.unshift({ name: 'all folds', color: PALETTE[0] ?? '#000', points: r.overall.thresholds.map((t) => ({ x: t.iou, y: t.f1 })) });
  return chartSvg({ title: 'Instance F1 by IoU threshold (each fold on its own held-out slides)', xLabel: 'IoU threshold', yLabel: 'F1', series, yRange: [0, 1] });
}

export function energyIouChart(r: CrossValidationReport): string {
  const objs = r.slides.flatMap((s) => s.score.objects).filter((o) => Number.isFinite(o.energy));
  return chartSvg({
    title: 'Mean energy of each predicted object vs its best IoU with the truth',
    xLabel: 'mean negative energy (higher = more confident)',
    yLabel: 'best IoU',
    yRange: [0, 1],
    series: [
      { name: 'true positive', color: PALETTE[3] ?? '#000', scatter: true, points: objs.filter((o) => o.outcome === 'tp').map((o) => ({ x: o.energy, y: o.bestIou })) },
      { name: 'false positive', color: PALETTE[0] ?? '#000', scatter: true, points: objs.filter((o) => o.outcome !== 'tp').map((o) => ({ x: o.energy, y: o.bestIou })) },
    ],
  });
}

export function reportHtml(r: CrossValidationReport): string {
  const n = (v: number | null): string => (v === null ? '–' : v.toFixed(3));
  const foldRows = r.folds.map((f) => `<tr><td>${f.fold}</td><td>${esc(f.model)}</td><td>${f.slides.length}</td><td>${f.pooled.tp}</td><td>${f.pooled.fp}</td><td>${f.pooled.fn}</td><td>${n(f.pooled.precision)}</td><td>${n(f.pooled.recall)}</td><td>${n(f.pooled.f1)}</td><td>${n(f.pooled.dice)}</td><td>${n(f.selectivity.energyAurocFp)}</td><td>${n(f.selectivity.softmaxAurocFp)}</td></tr>`).join('\n');
  const o = r.overall;
  const slideRows = r.slides.map((s) => `<tr><td>${esc(s.slide)}</td><td>${s.fold}</td><td>${s.score.truth}</td><td>${s.score.predicted}</td><td>${s.score.tp}</td><td>${s.score.fp}</td><td>${s.score.fn}</td><td>${n(s.score.f1)}</td><td>${n(s.score.dice)}</td></tr>`).join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>loupe eval: cross-validation</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}</style></head>
<body>
<h1>Cross-validation report</h1>
<p>${r.slides.length} slides, ${r.folds.length} folds; each slide is scored by the model of the fold that held it out. Instance matching is one-to-one (Hungarian, maximum total IoU); a pair counts at IoU ≥ the threshold. Dice is pixel Dice of the union masks per slide (mean over slides). Created ${esc(r.createdAt)}.</p>
<h2>All folds</h2>
<p>At IoU 0.5: TP ${o.tp}, FP ${o.fp}, FN ${o.fn}; precision ${n(o.precision)}, recall ${n(o.recall)}, <b>F1 ${n(o.f1)}</b>; mean slide Dice <b>${n(o.dice)}</b>. AUROC (TP vs FP) of mean energy ${n(o.selectivity.energyAurocFp)}, of mean softmax ${n(o.selectivity.softmaxAurocFp)}.</p>
<h2>Per fold (IoU 0.5)</h2>
<table><tr><th>fold</th><th>model</th><th>slides</th><th>TP</th><th>FP</th><th>FN</th><th>precision</th><th>recall</th><th>F1</th><th>Dice</th><th>AUROC energy</th><th>AUROC softmax</th></tr>
${foldRows}</table>
${thresholdChart(r)}
${energyIouChart(r)}
<h2>Per slide (IoU 0.5)</h2>
<table><tr><th>slide</th><th>fold</th><th>truth</th><th>predicted</th><th>TP</th><th>FP</th><th>FN</th><th>F1</th><th>Dice</th></tr>
${slideRows}</table>
</body></html>
`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.partial-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Writes report.json, slides.csv, folds.csv, report.html, f1-by-iou.png and energy-vs-iou.png into `outDir`. */
export async function writeReport(outDir: string, r: CrossValidationReport): Promise<Record<string, string>> {
  await mkdir(outDir, { recursive: true });
  const files = {
    json: join(outDir, 'report.json'),
    slidesCsv: join(outDir, 'slides.csv'),
    foldsCsv: join(outDir, 'folds.csv'),
    html: join(outDir, 'report.html'),
    f1Png: join(outDir, 'f1-by-iou.png'),
    energyPng: join(outDir, 'energy-vs-iou.png'),
  };
  await writeAtomic(files.slidesCsv, slidesCsv(r));
  await writeAtomic(files.foldsCsv, foldsCsv(r));
  await writeAtomic(files.html, reportHtml(r));
  await writePng(files.f1Png, thresholdChart(r));
  await writePng(files.energyPng, energyIouChart(r));
  // report.json last: its presence means the report is complete.
  await writeAtomic(files.json, `${JSON.stringify(r, null, 2)}\n`);
  return files;
}
