// Cohort inputs (folder, CSV, QuPath project) and the streamed level-0 Kaggle RLE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readCohortInput, slideIdFromName } from '../../server/cohort/cohort-input.ts';
import { levelZeroRle, writeLevelZeroRle, type GridObjectMask } from '../../server/cohort/kaggle-rle.ts';
import { rleEncode } from '../../server/objects/index.ts';
import { seededRandom } from '../../server/training/unet-spec.ts';
import { tempDir } from './helpers.ts';

test('a folder lists every entry (hidden files aside) with unique ids, in name order', async () => {
  const dir = tempDir();
  for (const f of ['b.svs', 'a.tif', 'a.svs', 'notes.txt', '.DS_Store']) await writeFile(join(dir, f), 'x');
  await mkdir(join(dir, 'c.zarr'));
  const input = await readCohortInput(dir);
  assert.equal(input.kind, 'folder');
  assert.deepEqual(input.entries.map((e) => e.slideId), ['a', 'a-2', 'b', 'c', 'notes']);
  assert.equal(slideIdFromName('x y (1).ome.tiff'), 'x_y_1_');
});

test('a CSV resolves relative paths from its folder, keeps given ids and marks missing files', async () => {
  const dir = tempDir();
  await writeFile(join(dir, 's1.tif'), 'x');
  await writeFile(join(dir, 'list.csv'), 'slide_path,slide_id\ns1.tif,case-1\n"missing, file.svs",\n');
  const input = await readCohortInput(join(dir, 'list.csv'));
  assert.equal(input.entries.length, 2);
  assert.deepEqual(input.entries[0], { slideId: 'case-1', path: join(dir, 's1.tif') });
  assert.equal(input.entries[1]?.problem?.code, 'E_SLIDE_NOT_FOUND');
  await writeFile(join(dir, 'bad.csv'), 'path\nx.tif\n');
  await assert.rejects(readCohortInput(join(dir, 'bad.csv')), /slide_path/);
  await writeFile(join(dir, 'dup.csv'), 'slide_path,slide_id\na,x\nb,x\n');
  await assert.rejects(readCohortInput(join(dir, 'dup.csv')), /appears twice/);
});

test('a QuPath project maps server URIs to files, follows a moved project, and states what cannot be read', async () => {
  const dir = tempDir();
  await mkdir(join(dir, 'images'));
  await writeFile(join(dir, 'images', 'k1.svs'), 'x');
  const oldRoot = '/somewhere/else/proj';
  const project = {
    version: '0.5.1',
    uri: `file:${oldRoot}/project.qpproj`,
    images: [
      { serverBuilder: { builderType: 'uri', uri: pathToFileURL(join(dir, 'images', 'k1.svs')).href }, entryID: 1, imageName: 'k1.svs' },
      { serverBuilder: { builderType: 'rotated', builder: { builderType: 'uri', uri: `file:${oldRoot}/../images/k1.svs` } }, entryID: 2, imageName: 'moved.svs' },
      { serverBuilder: { builderType: 'uri', uri: 'https://omero.example/img/5' }, entryID: 3, imageName: 'remote' },
      { serverBuilder: { builderType: 'uri', uri: 'file:/nope/gone.svs' }, entryID: 4, imageName: 'gone.svs' },
    ],
  };
  // The project now lives in `dir/proj`, its images in `dir/images` (same relative layout as before).
  await mkdir(join(dir, 'proj'));
  await writeFile(join(dir, 'proj', 'project.qpproj'), JSON.stringify(project));
  const input = await readCohortInput(join(dir, 'proj', 'project.qpproj'));
  assert.equal(input.kind, 'qpproj');
  const [a, b, c, d] = input.entries;
  assert.equal(a?.path, join(dir, 'images', 'k1.svs'));
  assert.equal(a?.problem, undefined);
  assert.equal(b?.path, join(dir, 'images', 'k1.svs'), 'moved project: image found relative to the project');
  assert.equal(b?.slideId, 'moved');
  assert.equal(c?.problem?.code, 'E_COHORT_URI_UNSUPPORTED');
  assert.equal(d?.problem?.code, 'E_SLIDE_NOT_FOUND');
  assert.match(d?.problem?.message ?? '', /gone\.svs/);
});

/** Level-0 mask from grid objects by nearest upsampling (what the streamed RLE must equal). */
function upsample(objects: GridObjectMask[], W: number, H: number, gw: number, gh: number, d: number): Uint8Array {
  const grid = new Uint8Array(gw * gh);
  for (const o of objects) {
    for (let y = 0; y < o.box.height; y++) for (let x = 0; x < o.box.width; x++) if (o.mask[y * o.box.width + x]) grid[(o.box.y + y) * gw + o.box.x + x] = 1;
  }
  const m = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) m[y * W + x] = grid[Math.min(gh - 1, Math.floor(y / d)) * gw + Math.min(gw - 1, Math.floor(x / d))] as number;
  return m;
}

test('the streamed level-0 RLE equals encoding the full upsampled mask (column-major, merged across columns)', async () => {
  const r = seededRandom(5);
  for (const [W, H, d] of [[40, 30, 2], [37, 23, 3], [50, 41, 2.5], [16, 16, 1]] as const) {
    const gw = Math.max(1, Math.round(W / d));
    const gh = Math.max(1, Math.round(H / d));
    const objects: GridObjectMask[] = [];
    for (let k = 0; k < 4; k++) {
      const bw = 1 + Math.floor(r() * 6);
      const bh = 1 + Math.floor(r() * 6);
      const box = { x: Math.floor(r() * (gw - bw + 1)), y: Math.floor(r() * (gh - bh + 1)), width: bw, height: bh };
      objects.push({ box, mask: Uint8Array.from({ length: bw * bh }, () => (r() < 0.7 ? 1 : 0)) });
    }
    // A full column touching the bottom, so runs continue into the next column.
    objects.push({ box: { x: 0, y: 0, width: 2, height: gh }, mask: new Uint8Array(2 * gh).fill(1) });
    const grid = { width0: W, height0: H, gridWidth: gw, gridHeight: gh, downsample: d };
    const expected = rleEncode(upsample(objects, W, H, gw, gh, d), W, H);
    assert.equal(levelZeroRle(objects, grid), expected, `${W}×${H} at ${d}`);
    const file = join(tempDir(), 'x.rle');
    await writeLevelZeroRle(file, objects, grid);
    assert.equal(await readFile(file, 'utf8'), expected);
  }
  assert.equal(levelZeroRle([], { width0: 5, height0: 5, gridWidth: 5, gridHeight: 5, downsample: 1 }), '');
});
