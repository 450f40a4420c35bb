// Assembles the server: the store and services, the REST app and the WebSocket endpoint on one HTTP
// server. `loupe serve` and `loupe start` call `startLoupeServer`; tests call it with port 0.
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '../contracts/errors.ts';
import type { ServerConfig } from '../config/server-config.ts';
import type { ComputeBackend } from './compute.ts';
import { createRestApp } from './rest.ts';
import { Services } from './services.ts';
import { attachWebSocket, type WsHandle } from './ws-session.ts';

export interface LoupeServer {
  readonly services: Services;
  readonly http: HttpServer;
  readonly ws: WsHandle;
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startLoupeServer(config: Readonly<ServerConfig>, compute: ComputeBackend): Promise<LoupeServer> {
  const services = new Services(config, compute);
  const app = createRestApp(services);
  const http = createServer(app);
  // Slow-loris and idle-socket bounds; a WebSocket upgrade is not affected by requestTimeout.
  http.requestTimeout = 60_000;
  http.headersTimeout = 20_000;
  const ws = attachWebSocket(http, services);
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await services.close();
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new AppError('E_PORT_IN_USE', `port ${config.port} on ${config.host} is in use: choose another --port`, { cause: err });
    if (code === 'EADDRNOTAVAIL') throw new AppError('E_ARG_INVALID', `--host ${config.host} is not an address of this machine`, { cause: err });
    throw err;
  }
  const port = (http.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | null = null;
  return {
    services,
    http,
    ws,
    url: `http://${host}:${port}`,
    port,
    close: () => {
      closing ??= (async () => {
        await ws.close();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        await services.close();
      })();
      return closing;
    },
  };
}
