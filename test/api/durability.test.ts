// Durability across kill -9: `loupe serve` runs as a child process; corrections are submitted over
// the WebSocket and the process is killed with SIGKILL right after an ack (and again with a large
// submission in flight whose ack never came). After a restart every acknowledged correction is
// there, and the unacknowledged submission is there whole or not at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { Store } from '../../server/api/store.ts';
import { TestClient, tempDir } from './harness.ts';

const bin = fileURLToPath(new URL('../../bin/loupe.mjs', import.meta.url));
const square = (x: number, y: number, s: number) => ({ type: 'Polygon', coordinates: [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]] });
const uuid = (a: number, n: number): string => `00000000-0000-4000-${String(8000 + a)}-${String(n).padStart(12, '0')}`;

async function serve(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data', dataDir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve((JSON.parse(out) as { url: string }).url);
      } catch {
        // not complete yet
      }
    });
    child.on('exit', (code) => reject(new Error(`loupe serve exited (${code}) before listening: ${err}`)));
  });
  return { child, url };
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

test('every acknowledged correction survives kill -9; an unacknowledged one is whole or absent', async (t) => {
  const dataDir = tempDir(t, 'loupe-durable-');
  const seed = new Store(dataDir);
  const slide = seed.addSlide({ name: 's', path: '/x/s.svs', status: 'ready' }).id;
  seed.close();

  const first = await serve(dataDir);
  t.after(() => void first.child.kill('SIGKILL'));
  const c = await TestClient.connect(first.url);
  const acked: string[] = [];
  for (let s = 0; s < 5; s++) {
    const items = Array.from({ length: 20 }, (_, i) => ({ id: uuid(s, i), action: 'added', geometry: square(i * 50, s * 50, 40), class: 'Glomerulus' }));
    const rid = c.send({ type: 'corrections.submit', slide, reviewedRegions: [square(0, s * 50, 1000)], items });
    const ack = await c.reply(rid);
    assert.equal(ack.type, 'corrections.ack');
    if (ack.type === 'corrections.ack') acked.push(...ack.accepted);
  }
  // The last ack has just arrived: kill at once.
  first.child.kill('SIGKILL');
  await killed(first.child);
  c.close();

  let second = await serve(dataDir);
  t.after(() => void second.child.kill('SIGKILL'));
  const fc = JSON.parse((await request(second.url).get(`/api/slides/${slide}/corrections`).expect(200)).text) as { features: { id: string }[] };
  const ids = new Set(fc.features.map((f) => f.id));
  for (const id of acked) assert.ok(ids.has(id), `acknowledged correction ${id} was lost`);
  assert.equal(ids.size, acked.length);

  // A large submission in flight when the process dies: no ack is awaited.
  const c2 = await TestClient.connect(second.url);
  const big = Array.from({ length: 3000 }, (_, i) => ({ id: uuid(9, i), action: 'added', geometry: square(i, 5000, 10) }));
  await new Promise<void>((resolve, reject) => c2.ws.send(JSON.stringify({ type: 'corrections.submit', requestId: 'big', slide, reviewedRegions: [], items: big }), (e) => (e ? reject(e) : resolve())));
  second.child.kill('SIGKILL');
  await killed(second.child);
  c2.close();

  const store = new Store(dataDir);
  const stored = store.listCorrections(slide).map((x) => x.itemId);
  store.close();
  const bigStored = stored.filter((id) => id.startsWith('00000000-0000-4000-8009-')).length;
  assert.ok(bigStored === 0 || bigStored === big.length, `a submission was stored partially: ${bigStored} of ${big.length} items`);
  for (const id of acked) assert.ok(stored.includes(id));

  second = await serve(dataDir);
  await request(second.url).get('/api/health').expect(200);
  second.child.kill('SIGTERM');
  await killed(second.child);
});
