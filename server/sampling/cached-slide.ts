// A slide held in memory at the training downsample: the whole slide is read once at `d` (in strips,
// so the source never materialises at level 0), then every window the sampler asks for at `d` is a
// crop, and coarser reads (thumbnails, region maps) are box averages of the cache. For slides whose
// reader is slow per pixel (synthetic fixtures render level 0 on demand; files without a pyramid) this
// turns per-tile cost from a level-0 render into a memcpy. Memory: (W/d)·(H/d)·3 bytes.
import type { ReadRegionOptions, RegionPx, RgbImage, SlideReader } from '../contracts/slide.ts';
import { gridUnit } from './remap.ts';

export async function cacheSlide(reader: SlideReader, downsample: number, stripPx = 2048): Promise<SlideReader> {
  const { width, height } = reader.info;
  const d = downsample;
  const cw = Math.max(1, Math.round(width / d));
  const ch = Math.max(1, Math.round(height / d));
  const cache = new Uint8Array(cw * ch * 3).fill(255);
  // Strips of whole cache rows: level-0 rows [row·d, (row + k)·d).
  const unitRows = Math.round(gridUnit(d) / d); // strips start on whole level-0 rows
  const rowsPerStrip = Math.max(unitRows, Math.floor(stripPx / d / unitRows) * unitRows);
  for (let row = 0; row < ch; row += rowsPerStrip) {
    const rows = Math.min(rowsPerStrip, ch - row);
    const y = Math.round(row * d);
    const h = Math.round((row + rows) * d) - y;
    const img = await reader.readRegion({ x: 0, y, width: Math.round(cw * d), height: h }, d, { layout: 'HWC' });
    const copyRows = Math.min(rows, img.height);
    const copyCols = Math.min(cw, img.width);
    for (let r = 0; r < copyRows; r++) cache.set(img.data.subarray(r * img.width * 3, (r * img.width + copyCols) * 3), ((row + r) * cw) * 3);
  }

  const readRegion = async (region: RegionPx, ds: number, options: ReadRegionOptions = {}): Promise<RgbImage> => {
    const ow = Math.max(1, Math.round(region.width / ds));
    const oh = Math.max(1, Math.round(region.height / ds));
    if (ds < d * 0.999) return reader.readRegion(region, ds, options);
    const out = new Uint8Array(ow * oh * 3);
    // Output pixel (i, j) covers level-0 [x + i·sx, x + (i+1)·sx); average the cache pixels whose
    // centres fall inside (at ds = d on an aligned region this is exactly one pixel: a crop).
    const sx = region.width / ow;
    const sy = region.height / oh;
    for (let j = 0; j < oh; j++) {
      const y0 = (region.y + j * sy) / d - 0.5;
      const y1 = (region.y + (j + 1) * sy) / d - 0.5;
      const r0 = Math.ceil(y0 - 1e-9);
      const r1 = Math.max(r0, Math.ceil(y1 - 1e-9) - 1);
      for (let i = 0; i < ow; i++) {
        const x0 = (region.x + i * sx) / d - 0.5;
        const x1 = (region.x + (i + 1) * sx) / d - 0.5;
        const c0 = Math.ceil(x0 - 1e-9);
        const c1 = Math.max(c0, Math.ceil(x1 - 1e-9) - 1);
        let rr = 0;
        let gg = 0;
        let bb = 0;
        let n = 0;
        for (let r = r0; r <= r1; r++) {
          for (let c = c0; c <= c1; c++) {
            if (r < 0 || r >= ch || c < 0 || c >= cw) {
              rr += 255;
              gg += 255;
              bb += 255;
            } else {
              const k = (r * cw + c) * 3;
              rr += cache[k] ?? 255;
              gg += cache[k + 1] ?? 255;
              bb += cache[k + 2] ?? 255;
            }
            n++;
          }
        }
        const o = (j * ow + i) * 3;
        out[o] = Math.round(rr / n);
        out[o + 1] = Math.round(gg / n);
        out[o + 2] = Math.round(bb / n);
      }
    }
    if ((options.layout ?? 'HWC') === 'HWC') return { data: out, width: ow, height: oh, layout: 'HWC' };
    const plane = ow * oh;
    const chw = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) {
      chw[p] = out[p * 3] ?? 0;
      chw[p + plane] = out[p * 3 + 1] ?? 0;
      chw[p + 2 * plane] = out[p * 3 + 2] ?? 0;
    }
    return { data: chw, width: ow, height: oh, layout: 'CHW' };
  };

  return {
    info: { ...reader.info, source: `${reader.info.source} (cached at downsample ${d})` },
    readRegion,
    close: () => reader.close(),
  };
}
