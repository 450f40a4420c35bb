// A small protocol-v1 server for the extension's JUnit tests, for what a real `loupe serve` cannot
// stage on demand: fragmented 300 kB answers, dropped connections, refused tokens. Every client frame
// is checked with the server's own `parseClientMessage` (server/contracts/protocol.ts), and every frame
// it sends with `parseServerMessage`, so the Groovy message classes are held to the real contract.
// Run: node bin/run-ts.mjs qupath-extension/src/test/node/fake-server.ts [--token T]; prints "PORT n" then "READY".
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseClientMessage, parseServerMessage, PROTOCOL_VERSION, type ServerMessage, type WireFeature } from '../../../../server/contracts/protocol.ts';

const tokenArg = process.argv.indexOf('--token');
const token = tokenArg > 0 ? process.argv[tokenArg + 1] : undefined;

function square(x: number, y: number, size: number, energy: number): WireFeature {
  return {
    type: 'Feature',
    id: randomUUID(),
    geometry: { type: 'Polygon', coordinates: [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]] },
    properties: {
      objectType: 'annotation',
      classification: { name: 'Glomerulus', color: [230, 80, 160] },
      measurements: { energy, probability: 0.5 + energy / 20 },
      metadata: { 'loupe.energy': String(energy), 'loupe.probability': String(0.5 + energy / 20) },
    },
  };
}

function send(ws: WebSocket, m: ServerMessage): void {
  const check = parseServerMessage(JSON.parse(JSON.stringify(m)));
  if (!check.ok) throw new Error(`fake server would send an invalid ${m.type}: ${check.error.message}`);
  ws.send(JSON.stringify(m));
}

/** submissionId → what it carried, across connections (a retry may come on a new one). */
const submissions = new Map<string, string>();

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' });
wss.on('connection', (ws) => {
  let greeted = false;
  const slow = new Set<string>();
  let pendingInline: { requestId: string; byteLength: number; region: { x: number; y: number; width: number; height: number }; downsample: number } | null = null;
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      if (!pendingInline) return;
      const p = pendingInline;
      pendingInline = null;
      const ok = bytes.length === p.byteLength && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
      if (!ok) {
        send(ws, { type: 'error', requestId: p.requestId, code: 'E_PROTOCOL_BAD_IMAGE', message: `expected a PNG of ${p.byteLength} bytes, got ${bytes.length}` });
        return;
      }
      send(ws, { type: 'predict.result', requestId: p.requestId, slide: 'inline', region: p.region, downsample: p.downsample, objects: { type: 'FeatureCollection', features: [square(p.region.x + 10, p.region.y + 10, 50, 3.5)] }, stats: { inlineBytes: bytes.length }, modelVersion: 'v1' });
      return;
    }
    const parsed = parseClientMessage(data.toString());
    if (!parsed.ok) {
      send(ws, { type: 'error', requestId: parsed.requestId, code: parsed.error.code, message: parsed.error.message });
      return;
    }
    const m = parsed.message;
    if (m.type === 'hello') {
      if (token !== undefined && m.token !== token) {
        ws.close(4401, 'missing or wrong token');
        return;
      }
      greeted = true;
      send(ws, {
        type: 'welcome', requestId: m.requestId, server: { name: 'fake-loupe', version: '0.0.0' }, protocol: PROTOCOL_VERSION,
        models: { active: 'v1', versions: [{ version: 'v1', parent: null, active: true, promoted: true, createdAt: '2026-01-01T00:00:00Z', metrics: { dice: 0.8 } }] },
        limits: { maxFrameBytes: 8e6, hardFrameBytes: 64e6, maxPendingPerConnection: 8, maxPendingGlobal: 64, maxInlineImageBytes: 8e6, maxInlineImagePixels: 16e6, maxRegionPixels: 16e6, maxCandidates: 500, maxCorrectionItems: 10000 },
        notices: [],
      });
      return;
    }
    if (!greeted) {
      send(ws, { type: 'error', requestId: m.requestId, code: 'E_PROTOCOL_HELLO_FIRST', message: 'send hello first' });
      return;
    }
    switch (m.type) {
      case 'predict.region': {
        if (m.slide === 'drop-connection') {
          ws.terminate();
          return;
        }
        if (m.slide === 'slow') {
          slow.add(m.requestId);   // answered only by job.cancel (as the real server cancels a region in flight)
          return;
        }
        if (m.slide === 'inline') {
          pendingInline = { requestId: m.requestId, byteLength: m.image?.byteLength ?? -1, region: m.region, downsample: m.downsample };
          return;
        }
        for (let i = 1; i <= 2; i++) send(ws, { type: 'predict.progress', requestId: m.requestId, done: i, total: 2 });
        const features = [square(m.region.x + 5, m.region.y + 5, 40, 2.5), square(m.region.x + 100, m.region.y + 100, 30, 0.7)];
        send(ws, { type: 'predict.result', requestId: m.requestId, slide: m.slide, region: m.region, downsample: m.downsample, objects: { type: 'FeatureCollection', features }, stats: { tiles: 2, objects: 2 }, modelVersion: 'v1' });
        return;
      }
      case 'candidates.next': {
        // limit ≥ 1000 asks for a message of several hundred kB (arrives fragmented at the client).
        const features = Array.from({ length: m.limit }, (_, i) => square((i % 50) * 60, Math.floor(i / 50) * 60, 40, 0.1 * (m.limit - i)));
        features.sort((a, b) => (a.properties.measurements?.energy ?? 0) - (b.properties.measurements?.energy ?? 0));
        send(ws, { type: 'candidates', requestId: m.requestId, slide: m.slide, objects: { type: 'FeatureCollection', features }, remaining: 7, modelVersion: 'v1' });
        return;
      }
      case 'corrections.submit': {
        // Like the real server, a retry must carry exactly what the first send did.
        const key = m.submissionId;
        const payload = JSON.stringify({ slide: m.slide, reviewedRegions: m.reviewedRegions, items: m.items });
        if (key !== undefined && submissions.has(key) && submissions.get(key) !== payload) {
          send(ws, { type: 'error', requestId: m.requestId, code: 'E_SUBMISSION_REUSED', message: `submission ${key} was sent before with other content` });
          return;
        }
        const first = key === undefined || !submissions.has(key);
        if (key !== undefined) submissions.set(key, payload);
        // "lose-first-ack": the first send of each submission is stored but its ack is lost on the way.
        if (m.slide === 'lose-first-ack' && first) return;
        send(ws, { type: 'corrections.ack', requestId: m.requestId, slide: m.slide, accepted: m.items.map((i) => i.id), submissionId: m.submissionId ?? `sub-${m.items.length}-${m.reviewedRegions.length}`, stale: [] });
        return;
      }
      case 'train.start': {
        const jobId = `job-${m.mode}`;
        send(ws, { type: 'job.status', requestId: m.requestId, jobId, kind: 'train', state: 'queued' });
        for (let s = 1; s <= 3; s++) send(ws, { type: 'train.progress', requestId: m.requestId, jobId, phase: 'train', step: s, total: 3, loss: 1 / s, dice: 0.5 + s / 10, eta: 3 - s });
        send(ws, { type: 'model.updated', requestId: m.requestId, jobId, version: 'v2', parent: 'v1', metrics: { dice: 0.85 }, promoted: true, active: 'v2' });
        send(ws, { type: 'job.status', requestId: m.requestId, jobId, kind: 'train', state: 'done' });
        return;
      }
      case 'job.cancel':
        if (slow.delete(m.jobId)) send(ws, { type: 'error', requestId: m.jobId, code: 'E_CANCELLED', message: `request ${m.jobId} was cancelled by the client` });
        send(ws, { type: 'job.status', requestId: m.requestId, jobId: m.jobId, kind: 'train', state: 'cancelled' });
        return;
      case 'model.activate':
        if (m.version !== 'v1' && m.version !== 'v2') send(ws, { type: 'error', requestId: m.requestId, code: 'E_MODEL_NOT_FOUND', message: `no model ${m.version}` });
        else send(ws, { type: 'model.active', requestId: m.requestId, active: m.version, previous: 'v1' });
        return;
      case 'model.rollback':
        send(ws, { type: 'model.active', requestId: m.requestId, active: 'v1', previous: 'v2' });
        return;
      default: {
        const never: never = m;
        void never;
      }
    }
  });
});
wss.on('listening', () => {
  const addr = wss.address();
  if (typeof addr === 'object' && addr !== null) console.log(`PORT ${addr.port}\nREADY`);
});
// The test harness closes stdin when it is done; never outlive it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
