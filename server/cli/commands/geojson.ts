// `loupe geojson check|convert|compare`: inspect a QuPath GeoJSON export of any version, convert it to
// the dialect QuPath 0.5/0.6 import cleanly, and compare two annotation sets (instance
// precision/recall/F1 with Hungarian matching, AP, pixel Dice). Thin layer over server/objects/.
import type { Command } from 'commander';
import { action, parseNumberArg } from '../command.ts';
import type { GeoJsonProblem, GeoJsonSummary, RuleViolation } from '../../contracts/geojson.ts';

interface CheckResult {
  file: string;
  dialect: string;
  summary: GeoJsonSummary;
  problems: GeoJsonProblem[];
  /** Rules QuPath 0.5/0.6 would trip over if this file were imported as it is. */
  qupathImport: { ok: boolean; violations: RuleViolation[] };
}

interface ConvertResult {
  file: string;
  out: string;
  dialect: string;
  read: number;
  written: number;
  dropped: number;
  problems: { stage: 'read' | 'write'; problem: GeoJsonProblem }[];
}

interface CompareResult {
  pred: { file: string; objects: number };
  truth: { file: string; objects: number };
  iouThreshold: number;
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  meanMatchedIou: number;
  averagePrecision: { thresholds: number[]; ap: number[]; meanAp: number };
  pixelDice: number;
  /** Level-0 px per pixel of the masks Dice was computed on (1 = exact; larger for big extents). */
  diceDownsample: number;
  pairs: { pred: number; truth: number; predId: string; truthId: string; iou: number }[];
}

const fmt = (x: number) => x.toFixed(4);

function countsLine(m: Record<string, number>): string {
  const e = Object.entries(m);
  return e.length === 0 ? '-' : e.map(([k, v]) => `${k} ${v}`).join(', ');
}

function humanCheck(r: CheckResult): string {
  const lines = [
    `${r.file}: ${r.dialect}, ${r.summary.objects} of ${r.summary.features} features read`,
    `  kinds:      ${countsLine(r.summary.byKind)}`,
    `  geometries: ${countsLine(r.summary.byGeometryType)}`,
    `  classes:    ${countsLine(r.summary.byClass)}`,
    `  problems:   ${r.problems.length === 0 ? 'none' : countsLine(r.summary.problemsByCode)}`,
  ];
  for (const p of r.problems) lines.push(`    feature ${p.index}: ${p.code} (${p.severity}) ${p.message}`);
  lines.push(`  QuPath 0.5/0.6 import as is: ${r.qupathImport.ok ? 'ok' : `${r.qupathImport.violations.length} rule violation(s); \`loupe geojson convert\` fixes them`}`);
  for (const v of r.qupathImport.violations.slice(0, 20)) lines.push(`    ${v.index < 0 ? 'file' : `feature ${v.index}`}: ${v.rule}: ${v.message}`);
  if (r.qupathImport.violations.length > 20) lines.push(`    … ${r.qupathImport.violations.length - 20} more (use --json)`);
  return lines.join('\n');
}

function humanConvert(r: ConvertResult): string {
  const lines = [`${r.file} (${r.dialect}) → ${r.out}: ${r.written} objects written, ${r.read} read, ${r.dropped} dropped by the writer`];
  for (const { stage, problem: p } of r.problems) lines.push(`  ${stage} feature ${p.index}: ${p.code} (${p.severity}) ${p.message}`);
  return lines.join('\n');
}

function humanCompare(r: CompareResult): string {
  return [
    `prediction ${r.pred.file}: ${r.pred.objects} objects; truth ${r.truth.file}: ${r.truth.objects} objects`,
    `IoU ≥ ${r.iouThreshold}: TP ${r.tp}  FP ${r.fp}  FN ${r.fn}`,
    `precision ${fmt(r.precision)}  recall ${fmt(r.recall)}  F1 ${fmt(r.f1)}  mean matched IoU ${fmt(r.meanMatchedIou)}`,
    `AP@[${r.averagePrecision.thresholds[0]}:${r.averagePrecision.thresholds[r.averagePrecision.thresholds.length - 1]}] ${fmt(r.averagePrecision.meanAp)}`,
    `pixel Dice ${fmt(r.pixelDice)}${r.diceDownsample > 1 ? ` (on masks at downsample ${r.diceDownsample.toFixed(2)})` : ''}`,
  ].join('\n');
}

export function register(program: Command): void {
  const geojson = program.command('geojson').description('Check, convert and compare QuPath GeoJSON (any QuPath version)');

  geojson
    .command('check <file>')
    .description('Dialect, counts by kind, geometry type and class, and every per-feature problem')
    .option('--json', 'print one JSON document')
    .action(
      action(async (_ctx, file: string): Promise<CheckResult> => {
        const { readGeoJsonFile } = await import('../../objects/geojson-read.ts');
        const { checkQuPathImportRules } = await import('../../objects/import-rules.ts');
        const { readFile } = await import('node:fs/promises');
        const parsed = await readGeoJsonFile(file);
        let raw: unknown;
        try {
          raw = JSON.parse((await readFile(file)).toString('utf8').replace(/^\uFEFF/, ''));
        } catch {
          raw = undefined; // compressed input: the rules are checked on what a converter would write
        }
        const violations = raw === undefined ? [] : checkQuPathImportRules(raw, { mirroredResults: 'none' });
        return { file, dialect: parsed.dialect, summary: parsed.summary, problems: parsed.problems, qupathImport: { ok: violations.length === 0, violations } };
      }, humanCheck),
    );

  geojson
    .command('convert <file>')
    .description('Any GeoJSON dialect in, the QuPath-0.5/0.6-safe FeatureCollection out')
    .requiredOption('--out <file>', 'output .geojson (written atomically)')
    .option('--json', 'print one JSON document')
    .action(
      action(async (_ctx, file: string, opts: { out: string }): Promise<ConvertResult> => {
        const { readGeoJsonFile } = await import('../../objects/geojson-read.ts');
        const { writeQuPathGeoJsonFile } = await import('../../objects/geojson-write.ts');
        const parsed = await readGeoJsonFile(file);
        const written = await writeQuPathGeoJsonFile(opts.out, parsed.objects);
        return {
          file,
          out: opts.out,
          dialect: parsed.dialect,
          read: parsed.objects.length,
          written: written.featureCollection.features.length,
          dropped: written.dropped,
          problems: [...parsed.problems.map((problem) => ({ stage: 'read' as const, problem })), ...written.problems.map((problem) => ({ stage: 'write' as const, problem }))],
        };
      }, humanConvert),
    );

  geojson
    .command('compare <pred> <truth>')
    .description('Instance precision/recall/F1 (Hungarian matching on IoU), AP and pixel Dice of two annotation sets')
    .option('--iou <t>', 'IoU threshold for a match', parseNumberArg('iou', { exclusiveMin: 0 }), 0.5)
    .option('--json', 'print one JSON document')
    .action(
      action(async (_ctx, predFile: string, truthFile: string, opts: { iou: number }): Promise<CompareResult> => {
        const { AppError } = await import('../../contracts/errors.ts');
        if (opts.iou > 1) throw new AppError('E_ARG_INVALID', `--iou must be in (0, 1], got ${opts.iou}`);
        const { readGeoJsonFile } = await import('../../objects/geojson-read.ts');
        const { instanceOverlaps, matchOverlaps, averagePrecision, pixelDice } = await import('../../objects/metrics.ts');
        const { rasterisePolygons } = await import('../../objects/rasterise.ts');
        const { geometryBBox, bboxUnion, isAreaGeometry } = await import('../../objects/geometry-math.ts');
        const [pred, truth] = await Promise.all([readGeoJsonFile(predFile), readGeoJsonFile(truthFile)]);
        const predObjs = pred.objects.filter((o) => isAreaGeometry(o.geometry));
        const truthObjs = truth.objects.filter((o) => isAreaGeometry(o.geometry));
        const overlaps = instanceOverlaps({ kind: 'polygons', geometries: predObjs.map((o) => o.geometry) }, { kind: 'polygons', geometries: truthObjs.map((o) => o.geometry) });
        const m = matchOverlaps(overlaps, opts.iou);
        const ap = averagePrecision(overlaps);
        let dice = 1;
        let diceDownsample = 1;
        const all = [...predObjs, ...truthObjs].map((o) => geometryBBox(o.geometry));
        if (all.length > 0) {
          const box = all.reduce(bboxUnion);
          const region = { x: Math.floor(box.minX), y: Math.floor(box.minY), width: Math.max(1, Math.ceil(box.maxX) - Math.floor(box.minX)), height: Math.max(1, Math.ceil(box.maxY) - Math.floor(box.minY)) };
          diceDownsample = Math.max(1, Math.sqrt((region.width * region.height) / 16_000_000));
          dice = pixelDice(rasterisePolygons(predObjs.map((o) => o.geometry), region, diceDownsample), rasterisePolygons(truthObjs.map((o) => o.geometry), region, diceDownsample));
        }
        return {
          pred: { file: predFile, objects: predObjs.length },
          truth: { file: truthFile, objects: truthObjs.length },
          iouThreshold: opts.iou,
          tp: m.tp,
          fp: m.fp,
          fn: m.fn,
          precision: m.precision,
          recall: m.recall,
          f1: m.f1,
          meanMatchedIou: m.meanMatchedIou,
          averagePrecision: { thresholds: ap.thresholds, ap: ap.ap, meanAp: ap.meanAp },
          pixelDice: dice,
          diceDownsample,
          pairs: m.pairs.map((p) => ({ pred: p.pred, truth: p.truth, predId: predObjs[p.pred].id, truthId: truthObjs[p.truth].id, iou: p.iou })),
        };
      }, humanCompare),
    );
}
