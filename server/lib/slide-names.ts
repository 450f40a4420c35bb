// Short, unique names for a list of slide paths, recorded in model provenance (`valSlides`) and used
// by `loupe eval` to tell which fold held a slide out. Cohorts often keep one slide per folder under
// the same file name (`s41/slide.tif`, `s42/slide.tif` — what `loupe fixtures` writes), so the
// basename alone is ambiguous: then the shortest distinguishing tail of the path is used.
import { resolve, sep } from 'node:path';

/** For each path: its basename, or as many trailing path segments as make it unique in the list. */
export function uniqueSlideNames(paths: readonly string[]): string[] {
  const parts = paths.map((p) => resolve(p).split(sep).filter((s) => s.length > 0));
  return parts.map((segs, i) => {
    for (let k = 1; k <= segs.length; k++) {
      const tail = segs.slice(-k).join('/');
      const clash = parts.some((other, j) => j !== i && other.slice(-k).join('/') === tail);
      if (!clash) return tail;
    }
    return segs.join('/');
  });
}

/** True when `recorded` (a name from uniqueSlideNames) names `path`: equal tails of path segments. */
export function slideNameMatches(path: string, recorded: string): boolean {
  const segs = resolve(path).split(sep).filter((s) => s.length > 0);
  const want = recorded.split('/').filter((s) => s.length > 0);
  if (want.length === 0 || want.length > segs.length) return false;
  return segs.slice(-want.length).join('/') === want.join('/');
}
