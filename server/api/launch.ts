// Starting and stopping the server from the CLI (`loupe serve`, `loupe start`): builds the config,
// the compute backend and the server, optionally installs the default model and the demo slide, and
// closes everything cleanly on SIGINT/SIGTERM (in-flight commits finish; the WAL keeps the rest safe).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadServerConfig, type ServerConfigInput } from '../config/server-config.ts';
import { createCompute, syntheticSlidePath } from './compute-local.ts';
import { startLoupeServer, type LoupeServer } from './server.ts';

export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/default/', import.meta.url));
export const DEFAULT_MODEL_VERSION = 'default';
/** The demo slide `loupe start` registers: small enough to predict in seconds on 2 cores. */
export const DEMO_SLIDE = { kind: 'kidney', width: 4096, height: 3072, seed: 1 } as const;

export interface LaunchResult {
  url: string;
  port: number;
  host: string;
  dataDir: string;
  activeModel: string | null;
  slides: number;
  notices: string[];
}

export async function launchServer(input: ServerConfigInput, options: { demo: boolean }): Promise<{ server: LoupeServer; result: LaunchResult }> {
  const config = loadServerConfig(input);
  const compute = createCompute({ device: config.device, dataDir: config.dataDir });
  const server = await startLoupeServer(config, compute);
  const s = server.services;
  if (options.demo) {
    if (existsSync(`${DEFAULT_MODEL_DIR}model.json`)) {
      // Registered as "default" (its descendants become default-q1, default-f1, …).
      await s.registerModelDir(DEFAULT_MODEL_DIR, { activate: true, version: DEFAULT_MODEL_VERSION });
    }
    const demo = s.registerBuiltInSlide(syntheticSlidePath(DEMO_SLIDE), 'demo-kidney (synthetic)');
    if (demo.finished) await demo.finished;
  }
  const notices = s.notices();
  if (options.demo && !existsSync(`${DEFAULT_MODEL_DIR}model.json`)) notices.unshift(`no default model in ${DEFAULT_MODEL_DIR} yet: started without a model`);
  const stop = (): void => {
    void server.close().then(() => process.exit(process.exitCode ?? 0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    server,
    result: { url: server.url, port: server.port, host: config.host, dataDir: config.dataDir, activeModel: s.store.activeVersion(), slides: s.store.listSlides().length, notices },
  };
}
