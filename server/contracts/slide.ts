// The slide boundary: what every later stage (sampling, training, inference, api) may assume about a
// slide. Coordinates are always level-0 pixels; a downsample is a separate number.

/** A rectangle in level-0 pixel coordinates (may extend outside the slide). */
export interface RegionPx {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** HWC = interleaved RGB rows (images, PNG); CHW = planar (what ONNX NCHW models want). */
export type PixelLayout = 'HWC' | 'CHW';

/**
 * RGB uint8 pixels. `width`/`height` are output pixels, i.e. round(region.width / downsample).
 * Pixels outside the slide are white (255,255,255), never garbage or black.
 */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  layout: PixelLayout;
}

export interface PyramidLevel {
  width: number;
  height: number;
  /** level-0 width / this level's width (≥ 1). */
  downsample: number;
}

export interface SlideInfo {
  width: number;
  height: number;
  levels: PyramidLevel[];
  /** µm per level-0 pixel, null when the file does not say (never guessed). */
  mpp: number | null;
  /** Objective magnification (AppMag), null when unknown. */
  magnification: number | null;
  /** e.g. "aperio-svs", "tiff", "ome-tiff", "png", "jpeg", "ome-zarr", "synthetic". */
  format: string;
  /** Where the pixels came from (a path, or a description for synthetic slides). */
  source: string;
}

export interface ReadRegionOptions {
  layout?: PixelLayout;
  signal?: AbortSignal;
}

/** An open slide. Implementations: the OME-Zarr store (slides/), synthetic fixtures (fixtures/). */
export interface SlideReader {
  readonly info: SlideInfo;
  /**
   * Reads a level-0 region at any real downsample ≥ 1: taken from the best pyramid level and
   * area-averaged to the exact scale. Output size round(width/downsample) × round(height/downsample).
   */
  readRegion(region: RegionPx, downsample: number, options?: ReadRegionOptions): Promise<RgbImage>;
  close(): Promise<void>;
}
