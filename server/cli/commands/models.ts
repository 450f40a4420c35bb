// `loupe models import FILE.onnx --out DIR [...]` wraps an external ONNX model into a model package
// (docs/model-package.md); `loupe models info DIR` shows and checks a package.
import type { Command } from 'commander';
import { AppError } from '../../contracts/errors.ts';
import { action, parseIntArg, parseListArg, parseNumberArg } from '../command.ts';

function rgbArg(name: string, positive: boolean): (v: string) => [number, number, number] {
  return (v) => {
    const parts = parseListArg(v).map(Number);
    if (parts.length !== 3 || !parts.every((n) => Number.isFinite(n) && (!positive || n > 0))) {
      throw new AppError('E_ARG_INVALID', `--${name} must be three ${positive ? 'positive ' : ''}numbers r,g,b on the [0,1] scale, got "${v}"`);
    }
    return [parts[0] as number, parts[1] as number, parts[2] as number];
  };
}

function layoutArg(v: string): 'NCHW' | 'NHWC' {
  const u = v.toUpperCase();
  if (u !== 'NCHW' && u !== 'NHWC') throw new AppError('E_ARG_INVALID', `--layout must be NCHW or NHWC, got "${v}"`);
  return u;
}

function kindArg(v: string): 'logits' | 'softmax' | 'sigmoid' {
  if (v !== 'logits' && v !== 'softmax' && v !== 'sigmoid') throw new AppError('E_ARG_INVALID', `--output-kind must be logits, softmax or sigmoid, got "${v}"`);
  return v;
}

export function flipsArg(v: string): ('none' | 'h' | 'v' | 'hv')[] {
  const list = parseListArg(v);
  const ok = ['none', 'h', 'v', 'hv'] as const;
  const out = list.map((f) => {
    const hit = ok.find((o) => o === f);
    if (!hit) throw new AppError('E_ARG_INVALID', `--flips takes none,h,v,hv; got "${f}"`);
    return hit;
  });
  if (out.length === 0) throw new AppError('E_ARG_INVALID', '--flips needs at least one of none,h,v,hv');
  return out;
}

interface ImportFlags {
  out: string;
  layout?: 'NCHW' | 'NHWC';
  mean?: [number, number, number];
  std?: [number, number, number];
  downsample?: number;
  tile?: number;
  name?: string;
  modelVersion?: string;
  outputKind?: 'logits' | 'softmax' | 'sigmoid';
  foregroundChannel?: number;
  classes?: string;
  flips?: ('none' | 'h' | 'v' | 'hv')[];
  keepActivation?: boolean;
}

export function register(program: Command): void {
  const models = program.command('models').description('Import and inspect model packages (model.onnx + model.json)');
  models
    .command('import')
    .description('Wrap an external ONNX segmentation model (PyTorch NCHW, Keras NHWC, …) into a model package')
    .argument('<file>', 'the .onnx file')
    .requiredOption('--out <dir>', 'package folder to write')
    .option('--layout <NCHW|NHWC>', 'input layout, when the graph does not say', layoutArg)
    .option('--mean <r,g,b>', 'normalisation mean on [0,1] RGB', rgbArg('mean', false))
    .option('--std <r,g,b>', 'normalisation std on [0,1] RGB', rgbArg('std', true))
    .option('--downsample <d>', 'level-0 pixels per model pixel', parseNumberArg('downsample', { min: 1 }))
    .option('--tile <n>', 'tile side in pixels, when the graph has dynamic height/width', parseIntArg('tile', { min: 16 }))
    .option('--name <name>', 'model name (default: the file name)')
    .option('--model-version <v>', 'model version (default: the first 12 hex of the file sha256)')
    .option('--output-kind <kind>', 'logits|softmax|sigmoid, when the graph does not end in Softmax/Sigmoid', kindArg)
    .option('--foreground-channel <k>', 'output channel of the foreground class', parseIntArg('foreground-channel', { min: 0 }))
    .option('--classes <names>', 'class names by channel, comma-separated (background first)')
    .option('--flips <list>', 'TTA flips the model allows: none,h,v,hv', flipsArg)
    .option('--keep-activation', 'keep a final Softmax/Sigmoid (the energy score then degrades)')
    .option('--json', 'print {dir, manifest, notes} as JSON')
    .action(
      action(async (_ctx, file: string, flags: ImportFlags) => {
        const { readFile } = await import('node:fs/promises');
        const { importOnnxModel } = await import('../../models/import-onnx.ts');
        const { writeModelPackage } = await import('../../models/model-package.ts');
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(await readFile(file));
        } catch (err) {
          throw new AppError('E_MODEL_NOT_FOUND', `cannot read ${file}`, { cause: err });
        }
        const res = await importOnnxModel(bytes, file, {
          ...(flags.layout ? { layout: flags.layout } : {}),
          ...(flags.mean ? { mean: flags.mean } : {}),
          ...(flags.std ? { std: flags.std } : {}),
          ...(flags.downsample !== undefined ? { downsample: flags.downsample } : {}),
          ...(flags.tile !== undefined ? { tile: flags.tile } : {}),
          ...(flags.name ? { name: flags.name } : {}),
          ...(flags.modelVersion ? { version: flags.modelVersion } : {}),
          ...(flags.outputKind ? { outputKind: flags.outputKind } : {}),
          ...(flags.foregroundChannel !== undefined ? { foregroundChannel: flags.foregroundChannel } : {}),
          ...(flags.classes ? { classes: parseListArg(flags.classes) } : {}),
          ...(flags.flips ? { flips: flags.flips } : {}),
          ...(flags.keepActivation ? { keepActivation: true } : {}),
        });
        const manifest = await writeModelPackage(flags.out, res.onnx, res.manifest);
        return { dir: flags.out, manifest, notes: res.notes };
      }, (r) => [`wrote model package ${r.dir} (${r.manifest.name} ${r.manifest.version})`, ...r.notes.map((n) => `  ${n}`)].join('\n')),
    );
  models
    .command('info')
    .description('Show a model package and check it against its ONNX graph')
    .argument('<dir>', 'package folder')
    .option('--json', 'print {dir, manifest, signature} as JSON')
    .action(
      action(async (_ctx, dir: string) => {
        const { loadModelPackage } = await import('../../models/model-package.ts');
        const pkg = await loadModelPackage(dir);
        return { dir: pkg.dir, manifest: pkg.manifest, signature: pkg.signature };
      }, (r) => {
        const m = r.manifest;
        return [
          `${m.name} ${m.version}${m.parentVersion ? ` (from ${m.parentVersion})` : ''} — ${r.dir}`,
          `  input  "${m.input.name}" ${m.input.layout} ${m.input.tile}px at downsample ${m.input.downsample}, mean [${m.input.mean.join(', ')}], std [${m.input.std.join(', ')}]`,
          `  output "${m.output.name}" ${m.output.channels} channel(s) as ${m.output.kind}, foreground channel ${m.output.foregroundChannel}; classes ${m.classes.join(', ')}`,
          `  inference: flips ${m.inference.flips.join(',')}, shift ${m.inference.tileShift}, σ ${m.inference.sigmaFraction}·tile, threshold ${m.inference.threshold}`,
          `  provenance: ${m.provenance.createdBy || 'unknown'} ${m.provenance.createdAt}, onnx sha256 ${m.provenance.onnxSha256.slice(0, 16)}…`,
        ].join('\n');
      }),
    );
}
