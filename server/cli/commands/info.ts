// `loupe info SLIDE [--json]`: size, pyramid levels, MPP, magnification and format of a slide file
// or OME-Zarr store, read without converting anything.
import type { Command } from 'commander';
import { action } from '../command.ts';

export function register(program: Command): void {
  program
    .command('info')
    .description('Show the size, pyramid levels, MPP and format of a slide (file or OME-Zarr store)')
    .argument('<slide>', 'slide file or .zarr store')
    .option('--json', 'print {width, height, levels, mpp, magnification, format, source} as JSON')
    .action(
      action(async (_ctx, slide: string) => {
        const { openSourceSlide } = await import('../../slides/open-slide.ts');
        const reader = await openSourceSlide(slide);
        try {
          const { width, height, levels, mpp, magnification, format, source } = reader.info;
          return { width, height, levels, mpp, magnification, format, source };
        } finally {
          await reader.close();
        }
      }, (i) => [`${i.source}`, `  ${i.width}×${i.height} ${i.format}, mpp ${i.mpp ?? 'unknown'}, magnification ${i.magnification ?? 'unknown'}`, ...i.levels.map((l, k) => `  level ${k}: ${l.width}×${l.height} (×${Math.round(l.downsample * 1000) / 1000})`)].join('\n')),
    );
}
