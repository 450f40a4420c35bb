// The overlay.png of `loupe predict` and cohort scoring: a thumbnail (longest side ≤ 1024 px) of the
// predicted area with every object's raster mask filled at 50 % in its energy-rank colour. Works from
// the prediction-grid masks (inference/extract-objects) rather than polygons, so it costs one
// thumbnail read plus a pass over each object's bounding box.
import type { RegionPx, RgbImage, SlideReader } from '../contracts/slide.ts';
import type { RasterObject } from '../inference/extract-objects.ts';
import { energyColour } from './energy-stats.ts';

/** Longest side of overlay.png in pixels. */
export const OVERLAY_SIDE = 1024;

export interface OverlayOptions {
  /** Level-0 area shown (the predicted region or the whole slide). */
  area: RegionPx;
  /** Level-0 pixels per prediction-grid pixel, and where grid pixel (0, 0) starts. */
  gridDownsample: number;
  origin0: { x: number; y: number };
  /** Rank of each object (by `RasterObject.index`) among `rankCount` objects; colours run by rank. */
  ranks: ReadonlyMap<number, number>;
  rankCount: number;
  maxSide?: number;
}

export interface Overlay {
  png: Uint8Array;
  /** The thumbnail before painting (HWC RGB), e.g. for a tissue-area estimate. */
  thumbnail: RgbImage;
}

export async function renderOverlay(slide: SlideReader, objects: readonly RasterObject[], o: OverlayOptions): Promise<Overlay> {
  const { default: sharp } = await import('sharp');
  const { area, gridDownsample: d, origin0 } = o;
  const t = Math.max(1, Math.max(area.width, area.height) / (o.maxSide ?? OVERLAY_SIDE));
  const img = await slide.readRegion(area, t, { layout: 'HWC' });
  const px = Uint8Array.from(img.data);
  // Exact level-0 size of a thumbnail pixel per axis (the reader rounds the thumbnail size).
  const sx = area.width / img.width;
  const sy = area.height / img.height;
  for (const obj of objects) {
    const [r, g, b] = energyColour(o.ranks.get(obj.index) ?? 0, o.rankCount);
    const bb = obj.stats.bbox;
    const tx0 = Math.max(0, Math.floor((bb.x - area.x) / sx));
    const ty0 = Math.max(0, Math.floor((bb.y - area.y) / sy));
    const tx1 = Math.min(img.width, Math.ceil((bb.x + bb.width - area.x) / sx));
    const ty1 = Math.min(img.height, Math.ceil((bb.y + bb.height - area.y) / sy));
    for (let ty = ty0; ty < ty1; ty++) {
      const gy = Math.floor(((ty + 0.5) * sy + area.y - origin0.y) / d) - obj.box.y;
      if (gy < 0 || gy >= obj.box.height) continue;
      for (let tx = tx0; tx < tx1; tx++) {
        const gx = Math.floor(((tx + 0.5) * sx + area.x - origin0.x) / d) - obj.box.x;
        if (gx < 0 || gx >= obj.box.width || !obj.mask[gy * obj.box.width + gx]) continue;
        const i = (ty * img.width + tx) * 3;
        px[i] = ((px[i] as number) + r) >> 1;
        px[i + 1] = ((px[i + 1] as number) + g) >> 1;
        px[i + 2] = ((px[i + 2] as number) + b) >> 1;
      }
    }
  }
  const png = await sharp(px, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  return { png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength), thumbnail: img };
}
