#!/usr/bin/env node
// Entry point of the `loupe` CLI. Sources are TypeScript run through tsx, so `npx loupe` works
// straight after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../server/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
