// Progress reporting for long CLI work: a cli-progress bar with ETA on a terminal, nothing on a pipe
// or with --json (machine readers want the result, not the bar). Library code takes a
// `ProgressListener` and never knows which one it got.
import cliProgress from 'cli-progress';

export type ProgressListener = (done: number, total: number, message?: string) => void;

export const silentProgress: ProgressListener = () => {};

export interface ProgressBar {
  readonly update: ProgressListener;
  stop(): void;
}

export function createProgressBar(label: string, options: { enabled: boolean }): ProgressBar {
  if (!options.enabled || !process.stderr.isTTY) return { update: silentProgress, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {message}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, message = '') {
      if (!started) {
        bar.start(total, done, { message });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done, { message });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
