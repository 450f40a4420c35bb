// What `loupe serve` and `loupe start` share: their options, the launch, and the line they print.
// They differ only in `demo` (start installs the default model and a synthetic demo slide).
import type { Command } from 'commander';
import { action, parseIntArg } from './command.ts';

interface ServeOpts {
  host: string;
  port: number;
  data: string;
  slidesRoot?: string[];
  token?: string;
  device: string;
}

export function registerServeCommand(program: Command, name: string, description: string, demo: boolean): void {
  program
    .command(name)
    .description(description)
    .option('--host <host>', 'address to listen on (a token is required when not loopback)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0 = any free port)', parseIntArg('port', { min: 0, max: 65535 }), 8080)
    .option('--data <dir>', 'data directory (database, models, slide cache)', './loupe-data')
    .option('--slides-root <dir...>', 'directories slides may be registered from (repeatable)')
    .option('--token <token>', 'token clients must present (hello.token / Authorization: Bearer)')
    .option('--device <device>', 'cpu or cuda', 'cpu')
    .option('--json', 'print the listening address as JSON')
    .action(
      action(
        async (_ctx, opts: ServeOpts) => {
          const { launchServer } = await import('../api/launch.ts');
          const { result } = await launchServer({ host: opts.host, port: opts.port, dataDir: opts.data, slideRoots: opts.slidesRoot ?? [], token: opts.token ?? null, device: opts.device }, { demo });
          return result;
        },
        (r) => [`loupe serving at ${r.url} (WebSocket ${r.url.replace(/^http/, 'ws')}/ws, data ${r.dataDir})`, `active model: ${r.activeModel ?? 'none'}; slides: ${r.slides}`, ...r.notices.map((n) => `note: ${n}`)].join('\n'),
      ),
    );
}
