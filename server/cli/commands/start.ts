// `loupe start` (= `npm start`): serve with the default model active and a synthetic demo slide
// registered, so a newcomer sees the whole loop at once.
import type { Command } from 'commander';
import { registerServeCommand } from '../serve-options.ts';

export function register(program: Command): void {
  registerServeCommand(program, 'start', 'Serve with the default model and a synthetic demo slide (what `npm start` runs)', true);
}
