// `loupe score --cohort DIR|list.csv|project.qpproj --model DIR --out OUT [--resume] [--concurrency n]`:
// scores a whole cohort (cohort/run-cohort.ts) into per-slide folders plus summary.csv,
// submission.csv and report.html, with a progress bar (overall and per-slide ETA); Ctrl-C stops
// cleanly and `--resume` continues. With `--queue redis://HOST:PORT` it enqueues one BullMQ job per
// slide for `loupe worker`s instead, and with `--wait` follows them and writes the summary at the end.
import type { Command } from 'commander';
import { action, parseIntArg, parseNumberArg } from '../command.ts';
import { flipsArg } from './models.ts';

interface ScoreFlags {
  cohort: string;
  model: string;
  out: string;
  resume?: boolean;
  concurrency: number;
  threads?: number;
  threshold?: number;
  minArea?: number;
  fillHolesArea?: number;
  postprocess: boolean;
  skipEmpty: boolean;
  flips?: ('none' | 'h' | 'v' | 'hv')[];
  block?: number;
  reviewEnergy?: number;
  queue?: string;
  queueName?: string;
  attempts: number;
  wait?: boolean;
}

function fmtEta(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '?';
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** "slideA 40% ETA 12s · slideB 5% ETA 2m10s" — the per-slide part of the bar. */
function runningText(running: { slideId: string; tilesDone: number; tilesTotal: number; etaS: number | null; phase: string }[]): string {
  return running.map((r) => (r.phase === 'predict' ? `${r.slideId} ${r.tilesTotal ? Math.floor((100 * r.tilesDone) / r.tilesTotal) : 0}% ETA ${fmtEta(r.etaS)}` : `${r.slideId} ${r.phase}…`)).join(' · ');
}

/** Ctrl-C once: stop cleanly (resumable); twice: exit now. */
function interruptSignal(info: (line: string) => void): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  let hits = 0;
  const on = (): void => {
    hits++;
    if (hits === 1) {
      info('\nloupe: stopping after cleaning up the slides in progress (Ctrl-C again to quit at once)…');
      ac.abort(new Error('interrupted'));
    } else process.exit(130);
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

export function register(program: Command): void {
  program
    .command('score')
    .description('Score a cohort of slides (folder, CSV or QuPath project): per-slide results, summary.csv, submission.csv, report.html')
    .requiredOption('--cohort <path>', 'folder of slides (every file is tried), CSV with slide_path[,slide_id], or a QuPath .qpproj')
    .requiredOption('--model <dir>', 'model package folder')
    .requiredOption('--out <dir>', 'output folder (OUT/<slide_id>/…, OUT/summary.csv, …)')
    .option('--resume', 'continue a run in OUT: finished slides are kept, failed and unfinished ones are scored')
    .option('--concurrency <n>', 'slides at once in this process', parseIntArg('concurrency', { min: 1, max: 64 }), 1)
    .option('--threads <n>', 'onnxruntime threads (default: all cores)', parseIntArg('threads', { min: 1 }))
    .option('--threshold <p>', 'foreground probability threshold (default: the model’s)', parseNumberArg('threshold', { exclusiveMin: 0 }))
    .option('--min-area <px>', 'drop objects smaller than this many level-0 px² (default 8000)', parseNumberArg('min-area', { min: 0 }))
    .option('--fill-holes-area <px>', 'objects above this level-0 area get holes filled (default 40000)', parseNumberArg('fill-holes-area', { min: 0 }))
    .option('--no-postprocess', 'threshold and components only')
    .option('--no-skip-empty', 'run the model on empty (white) tiles too')
    .option('--flips <list>', 'TTA flips (default: what the model endorses): none,h,v,hv', flipsArg)
    .option('--block <n>', 'whole-slide block side on the map grid, a multiple of 512 (memory ∝ block²)', parseIntArg('block', { min: 512 }))
    .option('--review-energy <e>', 'objects with mean energy below this need review (default: the cohort’s 25th percentile)', parseNumberArg('review-energy'))
    .option('--queue <redis-url>', 'enqueue one BullMQ job per slide on redis://HOST:PORT for `loupe worker` instead of scoring here')
    .option('--queue-name <name>', 'BullMQ queue name', 'loupe-score')
    .option('--attempts <n>', 'queue attempts per slide before it is recorded as failed', parseIntArg('attempts', { min: 1, max: 100 }), 3)
    .option('--wait', 'with --queue: follow the jobs and write the summary when all have ended')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (ctx, flags: ScoreFlags) => {
        const settings = {
          ...(flags.threshold !== undefined ? { threshold: flags.threshold } : {}),
          postprocess: flags.postprocess,
          skipEmpty: flags.skipEmpty,
          ...(flags.minArea !== undefined ? { minAreaPx0: flags.minArea } : {}),
          ...(flags.fillHolesArea !== undefined ? { fillHolesAreaPx0: flags.fillHolesArea } : {}),
          ...(flags.flips ? { flips: flags.flips } : {}),
          ...(flags.block ? { blockSize: flags.block } : {}),
        };
        const bar = ctx.progress('score');
        const stop = interruptSignal(ctx.info);
        try {
          if (flags.queue) {
            const { prepareCohort, finishCohort } = await import('../../cohort/run-cohort.ts');
            const { enqueueCohort, waitForCohort } = await import('../../cohort/queue.ts');
            // Enqueuing is idempotent, so an existing OUT of the same cohort is always continued.
            const { outDir, manifest } = await prepareCohort({ input: flags.cohort, outDir: flags.out, modelDir: flags.model, resume: true, settings, reviewEnergy: flags.reviewEnergy ?? null });
            const queued = await enqueueCohort(outDir, manifest, { url: flags.queue, queueName: flags.queueName, attempts: flags.attempts });
            if (!flags.wait) return { mode: 'queued' as const, outDir, ...queued };
            const missing = await waitForCohort(outDir, manifest, {
              url: flags.queue,
              queueName: flags.queueName,
              signal: stop.signal,
              onProgress: (p) => bar.update(Math.round(p.progress * 100), p.total * 100, `${p.finished}/${p.total} slides${p.failed ? ` (${p.failed} failed)` : ''} ${runningText(p.running)}`),
            });
            bar.stop();
            return { mode: 'queue' as const, queued, ...(await finishCohort(outDir, manifest, { missing })) };
          }
          const { runCohort } = await import('../../cohort/run-cohort.ts');
          const result = await runCohort({
            input: flags.cohort,
            outDir: flags.out,
            modelDir: flags.model,
            resume: Boolean(flags.resume),
            settings,
            reviewEnergy: flags.reviewEnergy ?? null,
            concurrency: flags.concurrency,
            ...(flags.threads ? { threads: flags.threads } : {}),
            signal: stop.signal,
            onProgress: (p) => bar.update(Math.round(p.progress * 100), p.total * 100, `${p.finished}/${p.total} slides${p.failed ? ` (${p.failed} failed)` : ''}${p.reused ? ` (${p.reused} kept)` : ''} ${runningText(p.running)}`),
          });
          return { mode: 'local' as const, ...result };
        } finally {
          bar.stop();
          stop.dispose();
          const { releaseModelSessions } = await import('../../models/model-session.ts');
          await releaseModelSessions();
        }
      }, (r) => {
        if (r.mode === 'queued') return `queued ${r.added} slides on ${r.queue} (${r.alreadyQueued} already queued, ${r.retried} retried, ${r.done} already done); start "loupe worker", then "loupe score … --queue … --wait"`;
        return `${r.ok} of ${r.total} slides scored, ${r.failed} failed${r.pending ? `, ${r.pending} pending` : ''}; ${r.objects} objects → ${r.files.summary}, ${r.files.report}`;
      }),
    );
}
