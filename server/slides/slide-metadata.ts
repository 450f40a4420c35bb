// What a TIFF's ImageDescription says about the slide: Aperio's `key = value|…` header (MPP, AppMag)
// and OME-XML (PhysicalSizeX and its unit, channel count, pixel type). Pure string parsing; a value
// the text does not state is null, never a guess.

export interface DescriptionMeta {
  mpp: number | null;
  magnification: number | null;
}

const positive = (s: string | undefined): number | null => {
  if (s === undefined) return null;
  const v = Number(s.trim());
  return Number.isFinite(v) && v > 0 ? v : null;
};

export function isAperioDescription(desc: string | undefined): boolean {
  return typeof desc === 'string' && desc.startsWith('Aperio');
}

export function parseAperioDescription(desc: string): DescriptionMeta {
  const fields = new Map<string, string>();
  for (const part of desc.split('|').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return { mpp: positive(fields.get('MPP')), magnification: positive(fields.get('AppMag')) };
}

export function isOmeXml(desc: string | undefined): boolean {
  return typeof desc === 'string' && /<OME[\s>]/.test(desc);
}

export interface OmeMeta extends DescriptionMeta {
  sizeC: number | null;
  /** OME pixel type, e.g. "uint8", "uint16". */
  pixelType: string | null;
  samplesPerPixel: number | null;
}

const UNIT_TO_UM: Record<string, number> = { 'µm': 1, 'um': 1, 'micron': 1, 'nm': 1e-3, 'mm': 1e3, 'cm': 1e4, 'm': 1e6, 'Å': 1e-4 };

/** Reads the first <Pixels> element of an OME-XML document. */
export function parseOmeXml(xml: string): OmeMeta {
  const pixels = /<(?:\w+:)?Pixels\b([^>]*)>/.exec(xml)?.[1] ?? '';
  const attr = (name: string, within = pixels): string | undefined => new RegExp(`\\b${name}="([^"]*)"`).exec(within)?.[1];
  const size = positive(attr('PhysicalSizeX'));
  const unit = attr('PhysicalSizeXUnit') ?? 'µm';
  const factor = UNIT_TO_UM[unit];
  const channel = /<(?:\w+:)?Channel\b([^>]*)>/.exec(xml)?.[1] ?? '';
  const objective = /<(?:\w+:)?Objective\b([^>]*)>/.exec(xml)?.[1] ?? '';
  return {
    mpp: size !== null && factor !== undefined ? size * factor : null,
    magnification: positive(attr('NominalMagnification', objective)),
    sizeC: positive(attr('SizeC')),
    pixelType: attr('Type') ?? null,
    samplesPerPixel: positive(attr('SamplesPerPixel', channel)),
  };
}

/**
 * µm per pixel from the TIFF resolution tags (XResolution as a rational, ResolutionUnit 2 = inch,
 * 3 = cm). Only values a microscope could produce (0.05–50 µm/px) count: a 72-dpi default written by
 * an image editor is not a slide resolution, so it gives null rather than 352 µm/px.
 */
export function mppFromResolutionTags(xResolution: unknown, resolutionUnit: unknown): number | null {
  let pixelsPerUnit: number | null = null;
  if (typeof xResolution === 'number') pixelsPerUnit = xResolution;
  else if (ArrayBuffer.isView(xResolution) || Array.isArray(xResolution)) {
    const parts = Array.from(xResolution as ArrayLike<number>);
    if (parts.length === 2 && parts[1] !== 0) pixelsPerUnit = (parts[0] ?? 0) / (parts[1] ?? 1);
  }
  if (pixelsPerUnit === null || !Number.isFinite(pixelsPerUnit) || pixelsPerUnit <= 0) return null;
  const micronsPerUnit = resolutionUnit === 3 ? 1e4 : resolutionUnit === 2 ? 25_400 : null;
  if (micronsPerUnit === null) return null;
  const mpp = micronsPerUnit / pixelsPerUnit;
  return mpp >= 0.05 && mpp <= 50 ? mpp : null;
}
