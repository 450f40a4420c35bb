// Shared by the cohort tests and the cohort benchmark: a small cohort of synthetic slides (fixtures/)
// and a tiny ONNX model package built on the spot (no downloads), plus a loopback redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_INFERENCE_SETTINGS, MODEL_PACKAGE_FORMAT, MODEL_PACKAGE_FORMAT_VERSION, type ModelManifest } from '../../server/contracts/model-package.ts';
import { OnnxGraphBuilder, attr } from '../../server/lib/onnx-builder.ts';
import { writeModelPackage } from '../../server/models/model-package.ts';
import { isCurrentStore } from '../../server/slides/open-slide.ts';
import { seededRandom } from '../../server/training/unet-spec.ts';
import { writeFixture } from '../../fixtures/write-fixture.ts';

export function tempDir(prefix = 'loupe-cohort-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A "stain detector" (foreground logit = 4 − 8·green, smoothed by a 9×9 mean so stained tissue gives
 * blobs rather than specks) plus a 3×3-conv branch of `width` channels whose contribution is scaled
 * to almost nothing: it only makes the model cost real compute, like a (very) small U-Net.
 */
export function stainModel(width = 4): Uint8Array {
  const g = new OnnxGraphBuilder('cohort-test');
  g.input('image', 'float32', ['N', 3, 'H', 'W']);
  const w = g.float([0, 0, 0, 0, -8, 0], [2, 3, 1, 1]);
  const b = g.float([0, 4], [2]);
  const stain = g.op('Conv', ['image', w, b], { kernel_shape: attr.ints([1, 1]) });
  const base = g.op('AveragePool', [stain], { kernel_shape: attr.ints([9, 9]), pads: attr.ints([4, 4, 4, 4]), count_include_pad: attr.int(0) });
  const r = seededRandom(3);
  const w1 = g.float(Array.from({ length: width * 3 * 9 }, () => (r() * 2 - 1) * 0.3), [width, 3, 3, 3]);
  const c1 = g.op('Relu', [g.op('Conv', ['image', w1], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) })]);
  const w2 = g.float(Array.from({ length: width * width * 9 }, () => (r() * 2 - 1) * 0.1), [width, width, 3, 3]);
  const c2 = g.op('Relu', [g.op('Conv', [c1, w2], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) })]);
  const w3 = g.float(Array.from({ length: 2 * width }, () => (r() * 2 - 1) * 1e-3), [2, width, 1, 1]);
  const extra = g.op('Conv', [c2, w3], { kernel_shape: attr.ints([1, 1]) });
  g.op('Add', [base, extra], {}, 'logits');
  g.output('logits', 'float32', ['N', 2, 'H', 'W']);
  return g.build();
}

export function modelManifest(tile = 128, downsample = 2): ModelManifest {
  return {
    format: MODEL_PACKAGE_FORMAT,
    formatVersion: MODEL_PACKAGE_FORMAT_VERSION,
    name: 'cohort-test',
    version: '1',
    parentVersion: null,
    classes: ['background', 'glomerulus'],
    input: { name: '', layout: 'NCHW', tile, channels: 3, mean: [0, 0, 0], std: [1, 1, 1], downsample, mppTrained: null },
    output: { name: '', kind: 'logits', channels: 2, foregroundChannel: 1 },
    inference: { ...DEFAULT_INFERENCE_SETTINGS, flips: ['none', 'h'] },
    provenance: { createdAt: new Date(0).toISOString(), createdBy: 'test', onnxSha256: '', trainingData: [], parameters: {}, metrics: {} },
  };
}

export async function writeTestModel(dir: string, options: { width?: number; tile?: number; downsample?: number } = {}): Promise<string> {
  await writeModelPackage(dir, stainModel(options.width ?? 4), modelManifest(options.tile ?? 128, options.downsample ?? 2));
  return dir;
}

/**
 * `n` synthetic kidney slides `slide-<i>.zarr` (size×size OME-Zarr, MPP 0.5) in `dir`, as symlinks
 * to a cache in the temp folder: fixtures are deterministic, so every test process after the first
 * reuses them instead of rendering again.
 */
export async function writeCohortSlides(dir: string, n: number, size = 1024, seed0 = 11): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const cacheRoot = join(tmpdir(), 'loupe-cohort-fixtures-v1');
  await mkdir(cacheRoot, { recursive: true });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const cached = join(cacheRoot, `kidney-${size}-${seed0 + i}`);
    // /tmp outlives clones: a fixture written by an older store layout is written again.
    if (!existsSync(join(cached, 'manifest.json')) || !(await isCurrentStore(join(cached, 'slide.zarr')))) {
      await rm(cached, { recursive: true, force: true });
      await writeFixture({ outDir: cached, params: { kind: 'kidney', width: size, height: size, seed: seed0 + i, mpp: 0.5, artifacts: false, density: 3 }, workers: 0, format: 'zarr' }).catch(async (err: unknown) => {
        // A parallel test process may have written it first (the fixture writer renames into place).
        if (!existsSync(join(cached, 'manifest.json'))) throw err;
      });
    }
    const p = join(dir, `slide-${i + 1}.zarr`);
    await symlink(join(cached, 'slide.zarr'), p);
    out.push(p);
  }
  return out;
}

export const redisServerBin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** A throw-away redis-server on loopback (no persistence); stop() kills it. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  if (!redisServerBin) throw new Error('redis-server is not installed (Debian package redis-server)');
  const port = await freePort();
  const child: ChildProcess = spawn(redisServerBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${text}`)), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      text += d.toString();
      if (/ready to accept connections/i.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${text}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await done;
    },
  };
}
