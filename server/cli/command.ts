// What every CLI command shares: --json output, coded one-line errors, exit codes, progress bars.
// A command module in cli/commands/ exports `register(program)`; main.ts finds them by file name, so
// adding a command touches no shared file. Heavy libraries (sharp, onnxruntime, tfjs) are imported
// inside the action so that `loupe --help` stays instant.
import type { Command } from 'commander';
import { AppError, toAppError } from '../contracts/errors.ts';
import { createProgressBar, type ProgressBar } from '../lib/progress.ts';

export interface CommandContext {
  /** --json was given: print exactly one JSON document on stdout, no bar. */
  readonly json: boolean;
  progress(label: string): ProgressBar;
  /** Human-readable line on stderr (silent under --json). */
  info(line: string): void;
}

export type CommandModule = { register(program: Command): void };

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or arguments. */
export function exitCodeFor(err: AppError): number {
  return err.code === 'E_USAGE' || err.code.startsWith('E_ARG') ? 2 : 1;
}

/**
 * Wraps a command action: runs it, prints its result (JSON under --json, else `human(result)`),
 * and turns any failure into `loupe: E_CODE: message` on stderr with a non-zero exit code.
 */
export function action<A extends unknown[], R>(
  run: (ctx: CommandContext, ...args: A) => Promise<R>,
  human?: (result: R) => string,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    const opts = cmd.opts() as { json?: boolean };
    const json = Boolean(opts.json);
    const ctx: CommandContext = {
      json,
      progress: (label) => createProgressBar(label, { enabled: !json }),
      info: (line) => {
        if (!json) process.stderr.write(`${line}\n`);
      },
    };
    try {
      const result = await run(ctx, ...args);
      if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else if (human) {
        const text = human(result);
        if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    } catch (err) {
      const e = toAppError(err);
      if (json) process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
      process.stderr.write(`loupe: ${e.code}: ${e.message.split('\n')[0]}\n`);
      if (process.env.LOUPE_DEBUG && e.stack) process.stderr.write(`${e.stack}\n`);
      process.exitCode = exitCodeFor(e);
    }
  };
}

// Argument parsers that fail with a coded error instead of commander's generic one.
export function parseIntArg(name: string, opts: { min?: number; max?: number } = {}): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
      throw new AppError('E_ARG_INVALID', `--${name} must be an integer${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` ≤ ${opts.max}` : ''}, got "${v}"`);
    }
    return n;
  };
}

export function parseNumberArg(name: string, opts: { min?: number; exclusiveMin?: number } = {}): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || (opts.min !== undefined && n < opts.min) || (opts.exclusiveMin !== undefined && n <= opts.exclusiveMin)) {
      throw new AppError('E_ARG_INVALID', `--${name} must be a number${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.exclusiveMin !== undefined ? ` > ${opts.exclusiveMin}` : ''}, got "${v}"`);
    }
    return n;
  };
}

export function parseListArg(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}
