// Geometry throughput for 10 000 glomerulus-like objects (discs with a hole, 48 vertices): rasterise
// into one region, vectorise the mask back (components + marching squares + simplification), write
// QuPath-safe GeoJSON (JTS validity per object) and parse it again. Ratios first, raw timings after.
import { timeIt, peakRss } from './measure.ts';
import type { AreaGeometry, Position, QuPathObject } from '../server/contracts/geojson.ts';
import { rasterisePolygons, rasterSize } from '../server/objects/rasterise.ts';
import { vectoriseMask } from '../server/objects/vectorise.ts';
import { toQuPathFeatureCollection, stringifyQuPathGeoJson } from '../server/objects/geojson-write.ts';
import { parseGeoJson } from '../server/objects/geojson-read.ts';
import { stableUuid } from '../server/objects/ids-and-colors.ts';

function circle(cx: number, cy: number, r: number, n: number, reverse = false): Position[] {
  const out: Position[] = [];
  for (let i = 0; i < n; i++) {
    const a = ((reverse ? -1 : 1) * 2 * Math.PI * i) / n;
    out.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  }
  out.push(out[0]);
  return out;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const side = Number(args[0] ?? 100); // side × side objects
  const downsample = Number(args[1] ?? 2);
  const spacing = 80;
  const geometries: AreaGeometry[] = [];
  for (let j = 0; j < side; j++) {
    for (let i = 0; i < side; i++) geometries.push({ type: 'Polygon', coordinates: [circle(40 + i * spacing, 40 + j * spacing, 30, 40), circle(44 + i * spacing, 40 + j * spacing, 10, 8, true)] });
  }
  const n = geometries.length;
  const region = { x: 0, y: 0, width: side * spacing, height: side * spacing };
  const { width, height } = rasterSize(region, downsample);

  const ras = await peakRss(() => timeIt(() => rasterisePolygons(geometries, region, downsample)));
  const mask = ras.value.value;
  const vec = await peakRss(() => timeIt(() => vectoriseMask(mask, width, height, { originX: 0, originY: 0, downsample })));
  const found = vec.value.value.objects.length;
  const objects: QuPathObject[] = vec.value.value.objects.map((o, k) => ({
    id: stableUuid(`bench:${k}`), idGenerated: false, kind: 'annotation', className: 'Glomerulus', classColor: [200, 0, 0],
    geometry: o.geometry, measurements: { energy: 0.5, areaPx: o.areaPx }, metadata: {}, locked: false, name: null, color: null,
  }));
  const write = await timeIt(() => stringifyQuPathGeoJson(toQuPathFeatureCollection(objects).featureCollection));
  const parse = await timeIt(() => parseGeoJson(write.value));
  const parseNoJts = await timeIt(() => parseGeoJson(write.value, undefined, { checkValidity: false }));
  return {
    objects: n,
    vectorisedObjects: found,
    mask: `${width}×${height} at downsample ${downsample}`,
    rasteriseObjectsPerSec: Math.round(n / (ras.value.ms / 1000)),
    vectoriseObjectsPerSec: Math.round(found / (vec.value.ms / 1000)),
    writeObjectsPerSec: Math.round(found / (write.ms / 1000)),
    parseObjectsPerSec: Math.round(found / (parse.ms / 1000)),
    ratioVectoriseToRasterise: vec.value.ms / ras.value.ms,
    ratioParseWithJtsToWithout: parse.ms / parseNoJts.ms,
    rasteriseMs: ras.value.ms,
    vectoriseMs: vec.value.ms,
    writeMs: write.ms,
    parseMs: parse.ms,
    parseWithoutValidityMs: parseNoJts.ms,
    geojsonMiB: Buffer.byteLength(write.value) / 2 ** 20,
    peakRssMiB: Math.max(ras.peakMiB, vec.peakMiB),
  };
}
