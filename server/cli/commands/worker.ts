// `loupe worker --queue redis://HOST:PORT --model DIR --out OUT`: a BullMQ worker that scores the
// slides `loupe score --queue` enqueued (cohort/queue.ts), into the shared OUT. Any number may run on
// any machine that sees OUT at its own path. Ctrl-C finishes the slide in progress, then exits (again:
// exit at once; the slide's lock expires and another worker takes it over).
import type { Command } from 'commander';
import { action, parseIntArg } from '../command.ts';

interface WorkerFlags {
  queue: string;
  model: string;
  out: string;
  queueName: string;
  concurrency: number;
  threads?: number;
  lockMs: number;
  exitWhenDone?: boolean;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('Process cohort scoring jobs from a BullMQ/Redis queue (see "loupe score --queue")')
    .requiredOption('--queue <redis-url>', 'redis://HOST:PORT of the queue')
    .requiredOption('--model <dir>', 'model package folder (the same model the cohort was queued with)')
    .requiredOption('--out <dir>', 'the cohort’s output folder (shared storage)')
    .option('--queue-name <name>', 'BullMQ queue name', 'loupe-score')
    .option('--concurrency <n>', 'slides at once in this worker', parseIntArg('concurrency', { min: 1, max: 64 }), 1)
    .option('--threads <n>', 'onnxruntime threads (default: all cores)', parseIntArg('threads', { min: 1 }))
    .option('--lock-ms <ms>', 'job lock; a dead worker’s slide is taken over after about this long', parseIntArg('lock-ms', { min: 500 }), 30_000)
    .option('--exit-when-done', 'exit once the queue has nothing waiting or running')
    .option('--json', 'print a JSON summary at exit; events as JSON lines on stderr')
    .action(
      action(async (ctx, flags: WorkerFlags) => {
        const { runScoreWorker } = await import('../../cohort/queue.ts');
        const ac = new AbortController();
        let hits = 0;
        const on = (): void => {
          hits++;
          if (hits === 1) {
            ctx.info('loupe worker: finishing the slide in progress (Ctrl-C again to quit at once)…');
            ac.abort();
          } else process.exit(130);
        };
        process.on('SIGINT', on);
        process.on('SIGTERM', on);
        try {
          return await runScoreWorker({
            url: flags.queue,
            queueName: flags.queueName,
            modelDir: flags.model,
            outDir: flags.out,
            concurrency: flags.concurrency,
            ...(flags.threads ? { threads: flags.threads } : {}),
            lockMs: flags.lockMs,
            exitWhenDone: Boolean(flags.exitWhenDone),
            signal: ac.signal,
            // One line per event, always: a log for whoever runs the worker under a supervisor.
            onEvent: (e) => process.stderr.write(ctx.json ? `${JSON.stringify({ ...e, pid: process.pid })}\n` : `loupe worker: ${e.type} ${e.slideId}${e.detail ? ` ${e.detail}` : ''}\n`),
          });
        } finally {
          process.off('SIGINT', on);
          process.off('SIGTERM', on);
          const { releaseModelSessions } = await import('../../models/model-session.ts');
          await releaseModelSessions();
        }
      }, (s) => `${s.worker}: ${s.processed} slides processed (${s.failed} failed)`),
    );
}
