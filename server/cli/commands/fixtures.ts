// `loupe fixtures`: writes a deterministic synthetic whole-slide fixture (slide, exact ground truth,
// distractors, artifacts, RLE, thumbnail, manifest) — see fixtures/README.md. The generator lives in
// fixtures/; this module only parses arguments and reports.
import type { Command } from 'commander';
import { AppError } from '../../contracts/errors.ts';
import { action, parseIntArg, parseNumberArg } from '../command.ts';

const KINDS = ['kidney', 'islets'] as const;
type Kind = (typeof KINDS)[number];

function parseChoice<T extends string>(name: string, choices: readonly T[]): (v: string) => T {
  return (v) => {
    const found = choices.find((c) => c === v);
    if (!found) throw new AppError('E_ARG_INVALID', `--${name} must be one of ${choices.join(', ')}, got "${v}"`);
    return found;
  };
}

interface FixturesOptions {
  kind: Kind;
  width: number;
  height: number;
  seed: number;
  mpp: number;
  out: string;
  format: 'tiff' | 'zarr';
  compression: 'jpeg' | 'deflate';
  tileSize: number;
  quality: number;
  tissueFraction?: number;
  density?: number;
  artifacts: boolean;
  force?: boolean;
  workers?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('fixtures')
    .description('Write a deterministic synthetic whole-slide fixture with exact ground truth (slide.tif, glomeruli.geojson, …)')
    .requiredOption('--out <dir>', 'output directory (must not exist unless --force)')
    .option('--kind <kind>', `tissue: ${KINDS.join(' | ')} (islets = H&E pancreas)`, parseChoice('kind', KINDS), 'kidney')
    .option('--width <px>', 'level-0 width in pixels', parseIntArg('width', { min: 1, max: 1_000_000 }), 8192)
    .option('--height <px>', 'level-0 height in pixels', parseIntArg('height', { min: 1, max: 1_000_000 }), 6144)
    .option('--seed <n>', 'random seed (same seed → byte-identical output)', parseIntArg('seed', { min: 0, max: 0xffffffff }), 7)
    .option('--mpp <um>', 'µm per level-0 pixel', parseNumberArg('mpp', { exclusiveMin: 0 }), 0.5)
    .option('--format <format>', 'slide format: tiff | zarr', parseChoice('format', ['tiff', 'zarr'] as const), 'tiff')
    .option('--compression <c>', 'TIFF tile compression: jpeg | deflate', parseChoice('compression', ['jpeg', 'deflate'] as const), 'jpeg')
    .option('--tile-size <px>', 'TIFF tile side (multiple of 16)', parseIntArg('tile-size', { min: 64, max: 4096 }), 512)
    .option('--quality <q>', 'JPEG quality', parseIntArg('quality', { min: 1, max: 100 }), 90)
    .option('--tissue-fraction <f>', 'fraction of the slide covered by tissue, (0, 1] (default: from the seed, 0.3–0.7)', parseNumberArg('tissue-fraction', { exclusiveMin: 0 }))
    .option('--density <x>', 'multiplier of object counts (ground truth and distractors)', parseNumberArg('density', { min: 0 }))
    .option('--no-artifacts', 'paint no air bubbles, folds, pen marks or out-of-focus patches')
    .option('--workers <n>', 'render threads (default: min(2, cores))', parseIntArg('workers', { min: 0, max: 64 }))
    .option('--force', 'replace an existing output directory once the new one is complete')
    .option('--json', 'print the manifest as JSON')
    .action(
      action(
        async (ctx, opts: FixturesOptions) => {
          const { writeFixture } = await import('../../../fixtures/write-fixture.ts');
          const bar = ctx.progress('fixtures');
          try {
            return await writeFixture({
              outDir: opts.out,
              params: {
                kind: opts.kind, width: opts.width, height: opts.height, seed: opts.seed, mpp: opts.mpp,
                ...(opts.tissueFraction !== undefined ? { tissueFraction: opts.tissueFraction } : {}),
                ...(opts.density !== undefined ? { density: opts.density } : {}),
                artifacts: opts.artifacts,
              },
              format: opts.format,
              compression: opts.compression,
              tileSize: opts.tileSize,
              quality: opts.quality,
              force: Boolean(opts.force),
              ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
              onProgress: bar.update,
            });
          } finally {
            bar.stop();
          }
        },
        (m) =>
          `wrote ${m.slide.file} (${m.slide.width}×${m.slide.height}, ${m.slide.levels.length} levels) with ${m.truth.count} ${m.truth.className.toLowerCase()} objects, ` +
          `${Object.values(m.counts.distractors).reduce((a, b) => a + b, 0)} distractors, ${Object.values(m.counts.artifacts).reduce((a, b) => a + b, 0)} artifacts`,
      ),
    );
}
