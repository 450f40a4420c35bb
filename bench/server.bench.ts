// `npm run bench -- server`: 50 concurrent WebSocket clients requesting regions from one server.
// The server is `loupe start` in a child process (so the clients' own work never delays it), with
// the default-size U-Net (levels 3, base 16, random weights, 256 px tiles, downsample 2) imported
// over REST, on the synthetic demo slide. Measures single-client latency (sequential requests), then
// every client sending its requests at once: all answered?, p50/p95 latency, p95 / single-client
// latency, throughput, and the server's peak RSS (VmHWM).
// Args: [clients=50] [requestsPerClient=2] [regionPx=512]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { readFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SERVER_CONFIG } from '../server/config/server-config.ts';
import { parseServerMessage } from '../server/contracts/protocol.ts';
import { writeTrainedPackage } from '../server/training/model-files.ts';
import { DEFAULT_UNET, initRunningStats, initUNetWeights } from '../server/training/unet-spec.ts';

interface Client {
  ws: WebSocket;
  request(msg: Record<string, unknown>): Promise<{ ms: number; type: string; code?: string }>;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waiting = new Map<string, (m: { type: string; code?: string }) => void>();
  ws.on('message', (data) => {
    const r = parseServerMessage(data.toString());
    if (!r.ok) return;
    const m = r.message;
    const rid = m.requestId;
    if (rid === null || m.type === 'predict.progress' || m.type === 'job.status') return;
    waiting.get(rid)?.({ type: m.type, ...(m.type === 'error' ? { code: m.code } : {}) });
    waiting.delete(rid);
  });
  let n = 0;
  const request = (msg: Record<string, unknown>) => {
    const requestId = `b-${++n}`;
    const t0 = performance.now();
    return new Promise<{ ms: number; type: string; code?: string }>((resolve) => {
      waiting.set(requestId, (m) => resolve({ ms: performance.now() - t0, ...m }));
      ws.send(JSON.stringify({ ...msg, requestId }));
    });
  };
  const hello = await request({ type: 'hello', protocol: 1, client: { name: 'bench', version: '0' } });
  if (hello.type !== 'welcome') throw new Error(`hello failed: ${JSON.stringify(hello)}`);
  return { ws, request };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] ?? 0) + ((sorted[hi] ?? 0) - (sorted[lo] ?? 0)) * (pos - lo);
}

const bin = fileURLToPath(new URL('../bin/loupe.mjs', import.meta.url));

async function startChild(dataDir: string, root: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [bin, 'start', '--port', '0', '--data', dataDir, '--slides-root', root, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve((JSON.parse(out) as { url: string }).url);
      } catch {
        // incomplete
      }
    });
    child.on('exit', (code) => reject(new Error(`loupe start exited with ${code}`)));
  });
  return { child, url };
}

/** Peak resident set of a process in MiB (Linux VmHWM). */
function peakRssOf(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = (await r.json()) as Record<string, unknown>;
  if (!r.ok) throw new Error(`${url}: ${JSON.stringify(j)}`);
  return j;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const clients = Number(args[0] ?? 50);
  const perClient = Number(args[1] ?? 2);
  const regionPx = Number(args[2] ?? 512);
  const dataDir = mkdtempSync(join(tmpdir(), 'loupe-bench-server-'));
  const loadBefore = loadavg()[0];
  try {
    const root = join(dataDir, 'root');
    mkdirSync(root);
    const modelDir = join(root, 'pkg');
    await writeTrainedPackage(modelDir, { spec: DEFAULT_UNET, weights: initUNetWeights(DEFAULT_UNET, 1), running: initRunningStats(DEFAULT_UNET) }, {
      name: 'bench-unet', version: 'bench', parentVersion: null, mean: [0.6, 0.5, 0.6], std: [0.3, 0.3, 0.3], tile: 256, downsample: 2, mppTrained: null, trainingData: [], parameters: {}, metrics: {}, createdBy: 'bench',
    });
    const { child, url } = await startChild(join(dataDir, 'data'), root);
    try {
      await postJson(`${url}/api/models/import`, { path: 'pkg', activate: true });
      const slides = (await (await fetch(`${url}/api/slides`)).json()) as { id: string; width: number; height: number }[];
      const demo = slides[0];
      if (!demo) throw new Error('loupe start registered no demo slide');
      const slide = demo.id;
      const slideW = demo.width;
      const slideH = demo.height;
      // One fixed set of 10 regions spread over the slide, cycled by both phases, so the single-client
      // and the concurrent latencies are over the same mix of tissue and glass (results are never cached).
      const regions = Array.from({ length: 10 }, (_, i) => ({
        x: Math.floor(((i % 5) + 0.5) * (slideW / 5) - regionPx / 2),
        y: Math.floor((Math.floor(i / 5) + 0.5) * (slideH / 2) - regionPx / 2),
        width: regionPx,
        height: regionPx,
      }));
      let k = 0;
      const nextRegion = () => regions[k++ % regions.length];
      const predict = (c: Client) => c.request({ type: 'predict.region', slide, region: nextRegion(), downsample: 2, options: { tta: false } });

      const single = await connect(url);
      await predict(single); // warm-up: session creation, first slide reads
      const singleMs: number[] = [];
      for (let i = 0; i < 10; i++) singleMs.push((await predict(single)).ms);
      single.ws.close();
      singleMs.sort((a, b) => a - b);

      const conns = await Promise.all(Array.from({ length: clients }, () => connect(url)));
      const t0 = performance.now();
      const results = await Promise.all(conns.flatMap((c) => Array.from({ length: perClient }, () => predict(c))));
      const wallMs = performance.now() - t0;
      for (const c of conns) c.ws.close();
      const peakMiB = peakRssOf(child.pid ?? 0);
      const ok = results.filter((r) => r.type === 'predict.result');
      const lat = ok.map((r) => r.ms).sort((a, b) => a - b);
      const singleMedian = quantile(singleMs, 0.5);
      const slots = DEFAULT_SERVER_CONFIG.computeConcurrency;
      return {
        clients,
        requests: results.length,
        answered: results.length,
        succeeded: ok.length,
        errors: Object.fromEntries([...new Set(results.filter((r) => r.type !== 'predict.result').map((r) => r.code ?? r.type))].map((c) => [c, results.filter((r) => (r.code ?? r.type) === c).length])),
        p95OverSingle: quantile(lat, 0.95) / singleMedian,
        p50OverSingle: quantile(lat, 0.5) / singleMedian,
        // With C compute slots, N simultaneous requests finish at best in ⌈N/C⌉ rounds of one request.
        queueingBoundP95OverSingle: Math.ceil((0.95 * results.length) / slots),
        throughputPerSecond: (ok.length / wallMs) * 1000,
        singleClientMs: { median: singleMedian, min: singleMs[0], max: singleMs.at(-1) },
        concurrentMs: { p50: quantile(lat, 0.5), p95: quantile(lat, 0.95), max: lat.at(-1), wall: wallMs },
        serverPeakRssMiB: peakMiB,
        // Other processes on the machine inflate latencies: the 1-minute load average before/after.
        loadAverage: { before: loadBefore, after: loadavg()[0] },
        setup: { regionPx, downsample: 2, model: 'U-Net levels 3 base 16, tile 256, random weights', tta: false, slide: `${slideW}x${slideH} synthetic kidney (loupe start demo)`, computeConcurrency: slots },
      };
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
