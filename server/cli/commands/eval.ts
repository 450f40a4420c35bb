// `loupe eval --models DIR… --slides A,B,… --annotations A.geojson,B.geojson,… --out DIR [--fold-of 1,2,…]`:
// k-fold cross-validation report (issue 10). Each slide is predicted by the model of the fold that
// held it out (from the packages' provenance, or `--fold-of`), through the production inference path
// (whole-slide Gaussian-blended tiles, the package's flips, the seed's post-processing), and scored
// against its annotations: instance precision / recall / F1 at IoU 0.5 and over a range of thresholds
// (one-to-one matching), pixel Dice per slide, and how well mean energy / mean softmax separate true
// from false positives. Writes report.json, slides.csv, folds.csv, report.html and two PNG plots.
import type { Command } from 'commander';
import { basename } from 'node:path';
import { uniqueSlideNames } from '../../lib/slide-names.ts';
import { action, parseIntArg, parseListArg, parseNumberArg } from '../command.ts';
import { AppError } from '../../contracts/errors.ts';

interface EvalOpts {
  models: string[];
  slides: string[];
  annotations: string[];
  out: string;
  foldOf?: string[];
  class?: string;
  iou?: string[];
  threshold?: number;
  threads?: number;
  json?: boolean;
}

function numbers(name: string, list: readonly string[], check: (n: number) => boolean, what: string): number[] {
  return list.map((s) => {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n) || !check(n)) throw new AppError('E_ARG_INVALID', `--${name}: "${s}" is not ${what}`);
    return n;
  });
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('k-fold cross-validation report: each fold\'s model scored on its own held-out slides (instance P/R/F1 over IoU thresholds, pixel Dice)')
    .requiredOption('--models <dir...>', 'model packages, one per fold (e.g. models/glom-fold1 models/glom-fold2)')
    .requiredOption('--slides <list>', 'comma-separated slide files or OME-Zarr stores', parseListArg)
    .requiredOption('--annotations <list>', 'comma-separated QuPath GeoJSON files with the true objects, one per slide', parseListArg)
    .requiredOption('--out <dir>', 'report folder (report.json, slides.csv, folds.csv, report.html, *.png)')
    .option('--fold-of <list>', 'fold number (1-based, the position in --models) of each slide; default: from each model\'s recorded validation slides', parseListArg)
    .option('--class <name>', 'only annotations of this class are true objects (default: every non-anatomy area)')
    .option('--iou <list>', 'IoU thresholds (default 0.5,0.55,…,0.95)', parseListArg)
    .option('--threshold <p>', 'foreground probability threshold (default: each package\'s)', parseNumberArg('threshold', { exclusiveMin: 0 }))
    .option('--threads <n>', 'onnxruntime threads', parseIntArg('threads', { min: 1 }))
    .option('--json', 'print the result as JSON')
    .action(
      action(async (ctx, opts: EvalOpts) => {
        if (opts.annotations.length !== opts.slides.length) throw new AppError('E_ARG_INVALID', `--annotations needs one file per slide: got ${opts.annotations.length} for ${opts.slides.length} slides`);
        if (opts.threshold !== undefined && opts.threshold >= 1) throw new AppError('E_ARG_INVALID', `--threshold must be in (0, 1), got ${opts.threshold}`);
        const iouThresholds = opts.iou ? numbers('iou', opts.iou, (n) => n > 0 && n <= 1, 'an IoU in (0, 1]') : undefined;
        const explicit = opts.foldOf ? numbers('fold-of', opts.foldOf, (n) => Number.isInteger(n) && n >= 1, 'a fold number ≥ 1') : undefined;
        const [{ loadModelPackage }, { getModelSession, releaseModelSessions }, { openSlide }, { readGeoJsonFile }, { splitAnnotations }, cv, { scoreSlide }, { predictObjects }] = await Promise.all([
          import('../../models/model-package.ts'),
          import('../../models/model-session.ts'),
          import('../../slides/open-slide.ts'),
          import('../../objects/geojson-read.ts'),
          import('../../training/annotations.ts'),
          import('../../evaluation/cross-validation.ts'),
          import('../../evaluation/score-objects.ts'),
          import('../../evaluation/predict-objects.ts'),
        ]);
        const pkgs = [];
        for (const dir of opts.models) pkgs.push(await loadModelPackage(dir));
        const models = pkgs.map((p, i) => {
          const v = p.manifest.provenance.parameters.valSlides;
          const valSlides = Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.map(String) : null;
          return { dir: opts.models[i] ?? '', version: p.manifest.version, valSlides };
        });
        const folds = cv.assignFolds(opts.slides, models, explicit);
        // Read every annotation file first: a bad file fails before any slow prediction.
        const truths = [];
        for (const [i, path] of opts.annotations.entries()) {
          const parsed = await readGeoJsonFile(path);
          const objects = splitAnnotations(parsed.objects, opts.class ?? null).objects.flatMap((g) => (g.type === 'Polygon' || g.type === 'MultiPolygon' ? [g] : []));
          if (objects.length === 0) ctx.info(`warning: ${path} (for ${basename(opts.slides[i] ?? '')}) has no object annotations${opts.class ? ` of class ${opts.class}` : ''}`);
          truths.push(objects);
        }
        const bar = ctx.progress('eval');
        const rows = [];
        try {
          for (const [i, path] of opts.slides.entries()) {
            const f = folds[i] ?? 0;
            const pkg = pkgs[f];
            if (!pkg) throw new AppError('E_INTERNAL', `no model for fold ${f + 1}`);
            const t0 = performance.now();
            const session = await getModelSession(pkg, opts.threads ? { threads: opts.threads } : {});
            const reader = await openSlide(path);
            try {
              const pred = await predictObjects(reader, pkg, session, {
                ...(opts.threshold !== undefined ? { threshold: opts.threshold } : {}),
                onProgress: (done, total) => bar.update(done, total, `${basename(path)} (fold ${f + 1})`),
              });
              const score = scoreSlide(pred, truths[i] ?? [], { x: 0, y: 0, width: reader.info.width, height: reader.info.height }, iouThresholds ? { iouThresholds } : {});
              rows.push({ slide: uniqueSlideNames(opts.slides)[i] ?? basename(path), annotations: uniqueSlideNames(opts.annotations)[i] ?? basename(opts.annotations[i] ?? ''), fold: f + 1, model: pkg.manifest.version, seconds: (performance.now() - t0) / 1000, score });
              ctx.info(`${basename(path)} (fold ${f + 1}, ${pkg.manifest.version}): F1@0.5 ${score.f1.toFixed(3)} (TP ${score.tp}, FP ${score.fp}, FN ${score.fn}), Dice ${score.dice.toFixed(3)}`);
            } finally {
              await reader.close();
            }
          }
        } finally {
          bar.stop();
          await releaseModelSessions();
        }
        const report = cv.buildReport(rows, models);
        const files = await cv.writeReport(opts.out, report);
        const o = report.overall;
        return {
          out: opts.out,
          files,
          overall: { tp: o.tp, fp: o.fp, fn: o.fn, precision: o.precision, recall: o.recall, f1: o.f1, dice: o.dice, energyAurocFp: o.selectivity.energyAurocFp, softmaxAurocFp: o.selectivity.softmaxAurocFp },
          folds: report.folds.map((fr) => ({ fold: fr.fold, model: fr.model, slides: fr.slides, f1: fr.pooled.f1, dice: fr.pooled.dice })),
          slides: rows.map((r) => ({ slide: r.slide, fold: r.fold, f1: r.score.f1, dice: r.score.dice, tp: r.score.tp, fp: r.score.fp, fn: r.score.fn })),
        };
      }, (r) => `${r.out}/report.html: F1@0.5 ${r.overall.f1.toFixed(3)}, mean slide Dice ${r.overall.dice.toFixed(3)} over ${r.slides.length} slides in ${r.folds.length} folds`),
    );
}
