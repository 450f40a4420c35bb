// `loupe serve`: the REST + WebSocket server (docs/server.md, docs/protocol.md). Prints where it
// listens (one JSON document under --json) and runs until SIGINT/SIGTERM.
import type { Command } from 'commander';
import { registerServeCommand } from '../serve-options.ts';

export function register(program: Command): void {
  registerServeCommand(program, 'serve', 'Serve the REST API and the WebSocket protocol for QuPath and scripts', false);
}
