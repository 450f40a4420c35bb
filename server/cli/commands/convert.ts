// `loupe convert IN --out OUT.zarr [--codec lz4|zstd|gzip] [--chunk 512] [--workers N]`: converts a
// slide file into an OME-Zarr NGFF 0.4 slide store (server/slides/write-ome-zarr.ts,
// docs/slide-store.md). Memory stays bounded whatever the slide size; compression runs in workers.
import type { Command } from 'commander';
import { rm } from 'node:fs/promises';
import { action, parseIntArg } from '../command.ts';
import { AppError } from '../../contracts/errors.ts';

const CODECS = ['lz4', 'zstd', 'gzip'] as const;
type Codec = (typeof CODECS)[number];

function parseCodec(v: string): Codec {
  const found = CODECS.find((c) => c === v);
  if (!found) throw new AppError('E_ARG_INVALID', `--codec must be one of ${CODECS.join(', ')}, got "${v}"`);
  return found;
}

interface ConvertOpts {
  out: string;
  codec: Codec;
  chunk: number;
  overwrite?: boolean;
  workers?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('Convert a whole-slide image (Aperio SVS, TIFF/BigTIFF/OME-TIFF, PNG, JPEG) to an OME-Zarr slide store')
    .argument('<input>', 'slide file to convert')
    .requiredOption('--out <dir>', 'output store directory, e.g. slide.zarr')
    .option('--codec <codec>', 'chunk compression: lz4 (fast, blosc), zstd (smaller) or gzip', parseCodec, 'lz4')
    .option('--chunk <px>', 'chunk side in pixels (even, 64–4096)', parseIntArg('chunk', { min: 64, max: 4096 }), 512)
    .option('--workers <n>', 'compression threads (0 = none; default one per core, or $LOUPE_SLIDE_WORKERS)', parseIntArg('workers', { min: 0, max: 64 }))
    .option('--overwrite', 'replace OUT if it exists')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (ctx, input: string, opts: ConvertOpts) => {
        const { convertSlide } = await import('../../slides/open-slide.ts');
        if (opts.overwrite) await rm(opts.out, { recursive: true, force: true });
        const bar = ctx.progress('convert');
        const controller = new AbortController();
        const onSignal = (): void => controller.abort();
        process.once('SIGINT', onSignal);
        const t0 = performance.now();
        try {
          const info = await convertSlide(input, opts.out, { codec: opts.codec, chunk: opts.chunk, ...(opts.workers !== undefined ? { workers: opts.workers } : {}), onProgress: (d, t) => bar.update(d, t, 'rows'), signal: controller.signal });
          const seconds = (performance.now() - t0) / 1000;
          return { out: opts.out, width: info.width, height: info.height, format: info.format, mpp: info.mpp, magnification: info.magnification, sha256: info.sha256, codec: opts.codec, chunk: opts.chunk, seconds: Math.round(seconds * 100) / 100 };
        } finally {
          bar.stop();
          process.off('SIGINT', onSignal);
        }
      }, (r) => `${r.out}: ${r.width}×${r.height} ${r.format}, mpp ${r.mpp ?? 'unknown'}, ${r.codec}, ${r.seconds} s`),
    );
}
