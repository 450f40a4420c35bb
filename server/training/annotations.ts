// From QuPath annotations to training inputs: which area objects are the foreground class, which are
// anatomy (Cortex / Medulla / …, for the region map) and which mark areas to ignore in the loss.
// Pure over parsed objects (objects/geojson-read.ts does the parsing).
import type { Geometry, QuPathObject } from '../contracts/geojson.ts';
import type { AnatomyRegionInput } from '../sampling/sampler.ts';

/** Anatomy class names the seed's JSONs use (deepflash2.md §1.2); matched case-insensitively. */
export const ANATOMY_CLASSES = ['cortex', 'medulla', 'outer stripe', 'inner medulla', 'outer medulla'];

const isArea = (g: Geometry): boolean => g.type === 'Polygon' || g.type === 'MultiPolygon';

export interface SplitAnnotations {
  objects: Geometry[];
  anatomy: AnatomyRegionInput[];
  ignore: Geometry[];
}

/**
 * `objectClass` null: every area annotation that is neither anatomy nor "Ignore*" is an object;
 * otherwise only objects of that class (case-insensitive).
 */
export function splitAnnotations(objects: readonly QuPathObject[], objectClass: string | null = null): SplitAnnotations {
  const out: SplitAnnotations = { objects: [], anatomy: [], ignore: [] };
  for (const o of objects) {
    if (!isArea(o.geometry)) continue;
    const cls = (o.className ?? '').trim().toLowerCase();
    if (ANATOMY_CLASSES.includes(cls)) out.anatomy.push({ className: o.className ?? '', geometry: o.geometry });
    else if (cls.startsWith('ignore')) out.ignore.push(o.geometry);
    else if (objectClass === null || cls === objectClass.trim().toLowerCase()) out.objects.push(o.geometry);
  }
  return out;
}
