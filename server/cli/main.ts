// The `loupe` CLI: discovers every module in cli/commands/ and lets each register its subcommand.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AppError, toAppError } from '../contracts/errors.ts';
import type { CommandModule } from './command.ts';
import { exitCodeFor } from './command.ts';
import { LOUPE_VERSION } from '../lib/version.ts';

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));

export async function buildProgram(): Promise<Command> {
  const program = new Command('loupe')
    .description('Segment functional tissue units in whole-slide images and review them in QuPath.')
    .version(LOUPE_VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError('(add --help for usage)');
  const files = readdirSync(commandsDir).filter((f) => f.endsWith('.ts')).sort();
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(commandsDir, f)).href)) as CommandModule;
    mod.register(program);
  }
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      // commander already printed its own message; add the coded line scripts can grep for.
      process.stderr.write(`loupe: E_USAGE: ${err.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    const e = toAppError(err);
    process.stderr.write(`loupe: ${e.code}: ${e.message}\n`);
    return e instanceof AppError ? exitCodeFor(e) : 1;
  }
}
