import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createSyntheticSlide } from '../../fixtures/synthetic-slide.ts';
import { runCli, repoRoot } from '../helpers/cli.ts';

async function writeSlide(dir: string, seed: number): Promise<{ png: string; geojson: string }> {
  const s = createSyntheticSlide({ kind: 'kidney', width: 768, height: 576, seed, mpp: 2, artifacts: false });
  const img = s.renderRegion({ x: 0, y: 0, width: 768, height: 576 });
  const png = join(dir, `slide-${seed}.png`);
  await sharp(Buffer.from(img.data), { raw: { width: 768, height: 576, channels: 3 } }).png().toFile(png);
  const feature = (coordinates: number[][][], name: string) => ({ type: 'Feature', id: crypto.randomUUID(), geometry: { type: 'Polygon', coordinates }, properties: { objectType: 'annotation', classification: { name, color: [255, 0, 0] } } });
  const features = [...s.plan.objects.map((o) => feature([o.ring], 'Glomerulus')), ...s.plan.anatomy.map((a) => feature(a.rings, a.className))];
  const geojson = join(dir, `slide-${seed}.geojson`);
  await writeFile(geojson, JSON.stringify({ type: 'FeatureCollection', features }));
  return { png, geojson };
}

test('loupe train refuses mismatched lists with a usage error', async () => {
  const r = await runCli(['train', '--slides', 'a.png,b.png', '--annotations', 'a.geojson', '--out', '/tmp/x', '--json']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /E_ARG_INVALID: --annotations needs one file per slide/);
});

test('loupe train killed with SIGKILL resumes with --resume and finishes the schedule', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'loupe-train-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = await writeSlide(dir, 31);
  const b = await writeSlide(dir, 32);
  const out = join(dir, 'models', 'glom');
  const args = ['train', '--slides', `${a.png},${b.png}`, '--annotations', `${a.geojson},${b.geojson}`, '--out', out,
    '--epochs', '3', '--tile', '32', '--downsample', '4', '--batch', '2', '--max-steps', '2', '--region-tiles', '2', '--backend', 'wasm', '--json'];
  const env = { ...process.env, LOUPE_SLIDE_CACHE: join(dir, 'cache') };
  const checkpoint = join(`${out}.training`, 'fold-1', 'checkpoint.bin');
  // First run: killed hard as soon as its first checkpoint exists.
  const killed = await new Promise<number | string>((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../bin/loupe.mjs', import.meta.url)), ...args], { cwd: repoRoot, env, stdio: 'ignore' });
    const poll = setInterval(() => {
      if (existsSync(checkpoint)) {
        clearInterval(poll);
        child.kill('SIGKILL');
      }
    }, 20);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve(signal ?? code ?? -1);
    });
  });
  assert.equal(killed, 'SIGKILL', 'the first run should still have been training when killed');
  assert.ok(!existsSync(join(out, 'model.onnx')), 'no package before the run completes');
  const r = await runCli([...args, '--resume'], { env, timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { out: string; folds: { valDice: number }[] };
  assert.equal(result.out, out);
  const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; iteration: number });
  assert.deepEqual(log.map((l) => l.epoch), [1, 2, 3]);
  assert.deepEqual(log.map((l) => l.iteration), [2, 4, 6]);
  assert.ok(existsSync(join(out, 'model.onnx')) && existsSync(join(out, 'curves.png')));
});
