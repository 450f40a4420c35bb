// `loupe start` (what `npm start` runs), as a newcomer would run it: it listens, registers the
// synthetic demo slide, and says whether a model is active; the status page shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { DEFAULT_MODEL_DIR } from '../../server/api/launch.ts';
import { TestClient, tempDir } from './harness.ts';

const bin = fileURLToPath(new URL('../../bin/loupe.mjs', import.meta.url));

test('loupe start: demo slide ready, the default model active when it exists, SIGTERM stops it', async (t) => {
  const data = tempDir(t, 'loupe-start-');
  const child = spawn(process.execPath, [bin, 'start', '--port', '0', '--data', data, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void child.kill('SIGKILL'));
  let out = '';
  const info = await new Promise<{ url: string; activeModel: string | null; slides: number; notices: string[] }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve(JSON.parse(out));
      } catch {
        // incomplete
      }
    });
    child.on('exit', (code) => reject(new Error(`loupe start exited with ${code}`)));
  });
  assert.equal(info.slides, 1);
  const slides = (await request(info.url).get('/api/slides').expect(200)).body as { name: string; status: string; width: number }[];
  assert.equal(slides[0]?.status, 'ready');
  assert.match(slides[0]?.name ?? '', /demo/);
  const hasDefault = existsSync(`${DEFAULT_MODEL_DIR}model.json`);
  const c = await TestClient.connect(info.url, { hello: false });
  const rid = c.send({ type: 'hello', protocol: 1, client: { name: 'newcomer', version: '0' } });
  const w = await c.reply(rid);
  c.close();
  assert.equal(w.type, 'welcome');
  if (w.type === 'welcome') {
    if (hasDefault) assert.equal(w.models.active, 'default');
    else {
      assert.equal(w.models.active, null);
      assert.ok(w.notices.some((n) => /no model is active/.test(n)));
      assert.ok(info.notices.some((n) => /no default model/.test(n)));
    }
  }
  const page = await request(info.url).get('/').expect(200);
  assert.match(page.text, /demo-kidney/);
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c2) => resolve(c2)));
  assert.equal(code, 0);
});
